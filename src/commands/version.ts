// brnet version: the package version, and with --json what a bug report needs besides.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from '../core/context.ts';
import { isRootless } from '../net/rootless.ts';
import { printJson } from '../ui/output.ts';
import { write } from '../tty.ts';

/** "bun 1.2.3" in the compiled executable, "node v20.19.0" under the Node fallback. */
export function runtimeName(versions: NodeJS.ProcessVersions = process.versions): string {
  const bun = (versions as { bun?: string }).bun;
  return bun ? `bun ${bun}` : `node v${versions.node}`;
}

/**
 * The backend the state's settings choose, read without the state's trust checks or its lock:
 * `version` must answer for any user, whatever the state dir is. Anything unreadable is the
 * default.
 */
export function firewallBackendOf(stateDir: string): 'iptables' | 'nftables' {
  try {
    const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { config?: { firewallBackend?: unknown } };
    return state.config?.firewallBackend === 'nftables' ? 'nftables' : 'iptables';
  } catch {
    return 'iptables';
  }
}

export function version(ctx: Ctx, version: string): void {
  if (!ctx.json) return write(1, `${version}\n`);
  printJson({ version, runtime: runtimeName(), firewallBackend: firewallBackendOf(ctx.stateDir), stateDir: ctx.stateDir, rootless: isRootless() });
}
