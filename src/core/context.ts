// What every command knows about how it was invoked.
import { environment } from '../errors.ts';
import { netAdminProblem, setRootlessWarn } from '../net/rootless.ts';
import type { State } from '../state/schema.ts';
import { readState } from '../state/store.ts';

export interface Ctx {
  stateDir: string;
  dryRun: boolean;
  json: boolean;
  quiet: boolean;
  /** Progress and warnings for people, on stderr; silent with --json/--quiet. */
  note(msg: string): void;
  warn(msg: string): void;
}

/** Root on the host, or rootless with CAP_NET_ADMIN over the network namespace (net/rootless.ts). */
export function requireRoot(ctx: Ctx): void {
  setRootlessWarn(ctx.warn);
  if (ctx.dryRun) return;
  const problem = netAdminProblem();
  if (problem) throw environment(`this command changes the network: ${problem.message}`, problem.hint);
}

/**
 * The state as it is, for commands that only read: no lock (the file is only ever replaced by
 * a rename). Here rather than in runner.ts, so that `ls` loads nothing of what changes the host.
 */
export async function readOnly(ctx: Ctx): Promise<State> {
  return (await readState(ctx.stateDir)).data;
}
