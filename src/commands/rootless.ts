// brnet rootless [-- CMD...]: see core/rootless-start.ts.
import type { Ctx } from '../core/context.ts';
import { BrnetError } from '../errors.ts';
import { shellQuote } from '../net/exec.ts';
import { printLines } from '../ui/output.ts';

export async function rootless(ctx: Ctx, cmd: string[]): Promise<void> {
  const { rootlesskitArgv, runRootless } = await import('../core/rootless-start.ts');
  if (ctx.dryRun) return printLines([shellQuote(rootlesskitArgv(cmd).argv)]);
  const status = await runRootless(cmd);
  // CMD's own status is brnet's; it has said what went wrong, if anything.
  if (status !== 0) throw new BrnetError('COMMAND_FAILED', `rootless: ${cmd[0] ?? 'the shell'} exited with status ${status}`, { exitCode: status });
}
