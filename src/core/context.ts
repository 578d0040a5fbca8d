// What every command knows about how it was invoked.
import { environment } from '../errors.ts';
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

export function requireRoot(ctx: Ctx): void {
  if (ctx.dryRun) return;
  if (process.getuid && process.getuid() !== 0) {
    throw environment(
      'this command changes the network and must run as root',
      'run it with sudo, or as root; --dry-run shows the plan without root (it needs read access to the state dir)',
    );
  }
}

/**
 * The state as it is, for commands that only read: no lock (the file is only ever replaced by
 * a rename). Here rather than in runner.ts, so that `ls` loads nothing of what changes the host.
 */
export async function readOnly(ctx: Ctx): Promise<State> {
  return (await readState(ctx.stateDir)).data;
}
