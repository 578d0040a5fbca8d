// `ip -batch -`: many link/address/route changes for the price of one process. It stops at the
// first failing line, so undo batches run with -force (carry on past lines that fail because
// their object never got created).
import type { Step } from '../plan/steps.ts';
import { run } from './exec.ts';

/**
 * argv prefix that runs `ip` inside the network namespace at `netnsPath` (host when null).
 * nsenter rather than `ip -n NAME` even for named namespaces: nsenter only joins the network
 * namespace, while `ip -n` also unshares the mount namespace and remounts /sys, and its
 * `mount --make-rslave /` walks every mount of the host, which grows with every namespace
 * mounted under /run/netns, while nsenter's extra exec costs the same on any host.
 */
export function ipArgv(netnsPath: string | null, ...args: string[]): string[] {
  if (!netnsPath) return ['ip', ...args];
  return ['nsenter', `--net=${netnsPath}`, '--', 'ip', ...args];
}

export async function ipBatch(lines: string[], netnsPath: string | null = null, force = false): Promise<void> {
  if (!lines.length) return;
  await run(ipArgv(netnsPath, ...(force ? ['-force'] : []), '-batch', '-'), { input: `${lines.join('\n')}\n`, allowFail: force });
}

export function ipBatchStep(lines: string[], undo: string[] = [], netnsPath: string | null = null): Step {
  const prefix = ipArgv(netnsPath).join(' ');
  return {
    show: lines.map((l) => `${prefix} ${l}`),
    do: () => ipBatch(lines, netnsPath),
    undo: undo.length ? () => ipBatch(undo, netnsPath, true) : undefined,
  };
}
