// brnet doctor: the findings on stdout (JSON with --json); exit 1 when one blocks brnet.
import type { Ctx } from '../core/context.ts';
import { printJson, printLines } from '../ui/output.ts';

export async function doctor(ctx: Ctx): Promise<void> {
  const { blockingError, diagnose, renderFindings } = await import('../core/doctor.ts');
  const r = await diagnose(ctx);
  if (ctx.json) printJson(r);
  else if (!ctx.quiet) printLines(renderFindings(r.findings));
  const err = blockingError(r);
  if (err) throw err;
}
