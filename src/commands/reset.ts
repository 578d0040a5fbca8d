// brnet reset: asks first on a terminal; elsewhere only with --yes.
import { readSync } from 'node:fs';
import type { Command } from 'commander';
import { invalid } from '../errors.ts';
import type { ResetResult } from '../core/reset.ts';
import { isTerminal, write } from '../tty.ts';
import { printJson, printLines } from '../ui/output.ts';
import { type Mutation, printPlan } from './mutation.ts';

/** One line from the terminal on stdin (canonical mode hands it over whole). */
function readAnswer(): string {
  const buf = Buffer.alloc(256);
  let text = '';
  while (!text.includes('\n')) {
    let n = 0;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch {
      break;
    }
    if (n <= 0) break;
    text += buf.toString('utf8', 0, n);
  }
  return text.trim();
}

function confirm(stateDir: string): void {
  if (!isTerminal(0) || !isTerminal(2)) {
    throw invalid('reset removes every network, endpoint and rule of brnet\'s: it needs --yes when not run on a terminal', 'run: brnet reset --yes (or see the plan first: brnet reset --dry-run)');
  }
  write(2, `Remove every network, endpoint, namespace and rule brnet made (state dir ${stateDir}) and put back the sysctls it changed? [y/N] `);
  if (!/^y(es)?$/i.test(readAnswer())) throw invalid('reset not confirmed: nothing changed');
}

export const reset: Mutation<ResetResult> = {
  async operation(_args, cmd: Command) {
    const o = cmd.optsWithGlobals() as { yes?: boolean; dryRun?: boolean; stateDir?: string };
    const stateDir = o.stateDir || process.env.BRNET_STATE_DIR || '/var/lib/brnet';
    // A plan changes nothing: nothing to confirm.
    if (!o.yes && !o.dryRun) confirm(stateDir);
    const { reset } = await import('../core/reset.ts');
    return reset(stateDir);
  },
  print(ctx, { result, plan }) {
    if (plan !== null) return printPlan(ctx, plan, result);
    if (ctx.json) return printJson(result);
    if (ctx.quiet) return;
    printLines([
      ...result.networks.map((n) => `removed network ${n}`),
      ...result.endpoints.map((e) => `removed endpoint ${e}`),
      ...result.leftovers.map((l) => `removed leftover ${l}`),
      ...result.reverted.map((r) => `reverted ${r.key}=${r.value}`),
    ]);
  },
};
