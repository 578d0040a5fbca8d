// What the command table needs from a command that changes something: how to turn what the
// user typed into an operation (the core plans and the runner applies it), and how to show
// the outcome. `brnet batch` uses only the first half.
import type { Command } from 'commander';
import type { Ctx } from '../core/context.ts';
import type { Operation, Outcome } from '../core/runner.ts';
import { printJson } from '../ui/output.ts';
import { write } from '../tty.ts';

export interface Mutation<R> {
  /** Bad input is refused here, before any lock or change. `args` are the positional arguments. */
  operation(args: any[], cmd: Command): Promise<Operation<R>> | Operation<R>;
  print(ctx: Ctx, outcome: Outcome<R>): void | Promise<void>;
}

/** Only what the user typed: defaults of --no-* flags must not look like choices. */
export function givenOptions<T extends object>(cmd: Command): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cmd.opts())) {
    if (cmd.getOptionValueSource(k) === 'cli' || cmd.getOptionValueSource(k) === 'env') out[k] = v;
  }
  return out as T;
}

/** --dry-run: the plan on stdout (with the result, as JSON, with --json). */
export function printPlan(ctx: Ctx, plan: string, result: unknown): void {
  if (ctx.json) return printJson({ dryRun: true, plan: plan ? plan.split('\n') : [], result });
  write(1, plan ? `${plan}\n` : '');
  if (!plan) ctx.note('nothing to do');
}
