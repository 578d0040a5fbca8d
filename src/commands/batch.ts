// brnet batch [FILE|-]: every line parsed into its operation first (bad input fails before
// the lock), then all of them run as one (core/runner.ts): one lock, one firewall commit, one
// state write, all or nothing.
import type { Ctx } from '../core/context.ts';
import { parseBatch, readSource } from '../core/batch.ts';
import { type Operation, runBatch } from '../core/runner.ts';
import { BrnetError, wrap } from '../errors.ts';
import type { Step } from '../plan/steps.ts';
import { printJson } from '../ui/output.ts';
import { type Progress, startProgress } from '../ui/progress.ts';
import { write } from '../tty.ts';

/** `parser` turns one line's words into its operation, through the CLI's own command table. */
export async function batch(ctx: Ctx, source: string | undefined, parser: () => (argv: string[]) => Promise<Operation<unknown>>): Promise<void> {
  const lines = parseBatch(readSource(source));
  const parse = parser();
  const ops: { op: Operation<unknown>; label: string }[] = [];
  const progress = startProgress(ctx, `batch: reading ${lines.length} lines`);
  let plan: string | null;
  try {
    for (const [i, { lineNo, argv }] of lines.entries()) {
      const label = `line ${lineNo}`;
      progress.text(`batch: reading line ${i + 1}/${lines.length}`);
      try {
        ops.push({ op: tracked(await parse(argv), i + 1, lines.length, progress), label });
      } catch (e) {
        if (e instanceof BrnetError) throw wrap(label, e);
        // commander's own errors: "error: unknown option '--x'"
        throw new BrnetError('USAGE', `${label}: ${String((e as Error).message ?? e).replace(/^error: /, '')}`, { cause: e });
      }
    }
    ({ plan } = await runBatch(ctx, ops));
  } finally {
    progress.stop();
  }
  const commands = lines.length;
  if (plan !== null) {
    if (ctx.json) return printJson({ dryRun: true, commands, plan: plan ? plan.split('\n') : [] });
    if (plan) write(1, `${plan}\n`);
    return;
  }
  if (ctx.json) return printJson({ commands });
  ctx.note(`${commands} command${commands === 1 ? '' : 's'} applied`);
}

/**
 * The batch plans line after line, each once the lines before it have run: planning line N
 * means N-1 are done. After the last line's steps come the firewall commit and the rest.
 */
function tracked(op: Operation<unknown>, n: number, total: number, progress: Progress): Operation<unknown> {
  return {
    what: op.what,
    async plan(state, host) {
      progress.text(`batch: ${n}/${total} ${op.what}`);
      const p = await op.plan(state, host);
      if (n < total) return p;
      const last: Step = { show: [], do: async () => progress.text(`batch: ${total}/${total} done; the firewall and the state`) };
      return { ...p, steps: [...p.steps, last] };
    },
  };
}
