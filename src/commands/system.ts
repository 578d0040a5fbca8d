// brnet restore [--watch] | check.
import type { Ctx } from '../core/context.ts';
import { BrnetError } from '../errors.ts';
import { printJson, printLines } from '../ui/output.ts';
import type { Restored } from '../core/restore.ts';
import { type Mutation, printPlan } from './mutation.ts';

const staleWarning = (ctx: Ctx, s: { network: string; endpoint: string; netns: string }) =>
  ctx.warn(`endpoint ${s.network}/${s.endpoint} is stale: namespace ${s.netns} is gone (remove it with: brnet endpoint rm ${s.network} ${s.endpoint})`);

export async function check(ctx: Ctx): Promise<void> {
  const { check } = await import('../core/restore.ts');
  const { drift, stale } = await check(ctx);
  for (const s of stale) staleWarning(ctx, s);
  if (ctx.json) printJson({ clean: drift.length === 0, drift, stale });
  else if (!ctx.quiet) printLines(drift.map((d) => `${d.kind}: ${d.what}`));
  if (drift.length) {
    throw new BrnetError('DRIFT', `the kernel differs from the state in ${drift.length} place${drift.length > 1 ? 's' : ''}`, {
      hint: 'run: brnet restore',
    });
  }
}

export const restore: Mutation<Restored> = {
  async operation() {
    const { restore } = await import('../core/restore.ts');
    return restore();
  },
  print(ctx, { result, plan }) {
    for (const s of result.stale) staleWarning(ctx, s);
    if (plan !== null) return printPlan(ctx, plan, { drift: result.drift, stale: result.stale });
    if (ctx.json) return printJson({ restored: result.drift, stale: result.stale });
    if (!ctx.quiet) printLines(result.drift.map((d) => `restored ${d.kind}: ${d.what}`));
  },
};

/** `restore --watch`: the first restore is printed as `restore` prints it; repairs one line each (core/watch.ts). */
export async function watchRestore(ctx: Ctx): Promise<void> {
  if (ctx.dryRun) throw new BrnetError('USAGE', '--watch and --dry-run do not go together', { hint: 'brnet restore --dry-run shows what a restore would do now' });
  const [{ watch }, { run }, core] = await Promise.all([import('../core/watch.ts'), import('../core/runner.ts'), import('../core/restore.ts')]);
  const silent: Ctx = { ...ctx, note: () => {}, warn: () => {} };
  await watch(ctx, async (quiet) => {
    const out = await run(quiet ? silent : ctx, core.restore());
    if (!quiet) restore.print(ctx, out);
    return out.result;
  });
}
