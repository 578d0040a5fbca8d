// brnet batch [FILE|-]: every line parsed into its operation first (bad input fails before
// the lock), then all of them run as one (core/runner.ts): one lock, one firewall commit, one
// state write, all or nothing.
import type { Ctx } from '../core/context.ts';
import { parseBatch, readSource } from '../core/batch.ts';
import { type Operation, runBatch } from '../core/runner.ts';
import { BrnetError, wrap } from '../errors.ts';
import { printJson } from '../ui/output.ts';
import { write } from '../tty.ts';

/** `parser` turns one line's words into its operation, through the CLI's own command table. */
export async function batch(ctx: Ctx, source: string | undefined, parser: () => (argv: string[]) => Promise<Operation<unknown>>): Promise<void> {
  const lines = parseBatch(readSource(source));
  const parse = parser();
  const ops: { op: Operation<unknown>; label: string }[] = [];
  for (const { lineNo, argv } of lines) {
    const label = `line ${lineNo}`;
    try {
      ops.push({ op: await parse(argv), label });
    } catch (e) {
      if (e instanceof BrnetError) throw wrap(label, e);
      // commander's own errors: "error: unknown option '--x'"
      throw new BrnetError('USAGE', `${label}: ${String((e as Error).message ?? e).replace(/^error: /, '')}`, { cause: e });
    }
  }
  const { plan } = await runBatch(ctx, ops);
  const commands = lines.length;
  if (plan !== null) {
    if (ctx.json) return printJson({ dryRun: true, commands, plan: plan ? plan.split('\n') : [] });
    if (plan) write(1, `${plan}\n`);
    return;
  }
  if (ctx.json) return printJson({ commands });
  ctx.note(`${commands} command${commands === 1 ? '' : 's'} applied`);
}
