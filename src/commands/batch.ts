// brnet batch [FILE|-]
import type { Ctx } from '../core/context.ts';
import { runBatch } from '../core/batch.ts';
import { printJson } from '../ui/output.ts';
import { write } from '../ui/tty.ts';

export async function batch(ctx: Ctx, source: string | undefined): Promise<void> {
  const { commands, plan } = await runBatch(ctx, source);
  if (plan !== null) {
    if (ctx.json) return printJson({ dryRun: true, commands, plan: plan ? plan.split('\n') : [] });
    if (plan) write(1, `${plan}\n`);
    return;
  }
  if (ctx.json) return printJson({ commands });
  ctx.note(`${commands} command${commands === 1 ? '' : 's'} applied`);
}
