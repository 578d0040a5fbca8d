// Sysctls are written straight to /proc/sys (no process), read first and skipped when the
// value is already right, as netavark does. Values are per network namespace; rootless, one
// that cannot be written is left alone with a warning.
import { readFileSync, writeFileSync } from 'node:fs';
import { environment } from '../errors.ts';
import type { Step } from '../plan/steps.ts';
import { isRootless, netAdminProblem, permissionHint, warnOnce } from './rootless.ts';

export type SysctlWrites = [key: string, value: string][];

const pathOf = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;
// Keys name interfaces, which may contain dots: callers pass keys with '/' separators
// when an interface name is involved, e.g. "net/ipv6/conf/br-x.1/accept_ra".
const keyPath = (key: string) => (key.includes('/') ? `/proc/sys/${key}` : pathOf(key));

export function readSysctl(key: string): string | null {
  try {
    return readFileSync(keyPath(key), 'utf8').trim();
  } catch {
    return null;
  }
}

/** false when rootless mode left it alone (see below). */
function writeSysctl(key: string, value: string): boolean {
  try {
    writeFileSync(keyPath(key), value);
    return true;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const denied = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS';
    const name = key.replace(/\//g, '.');
    // Rootless, a sysctl that is not per network namespace (or that the host made read-only)
    // is the host's business: the network works without it, or as well as the host allows.
    if (denied && isRootless() && !netAdminProblem()) {
      warnOnce(`rootless: ${name} cannot be set from this user namespace (${err.code}): left at ${readSysctl(key) ?? 'its value'}`);
      return false;
    }
    throw environment(`cannot set ${name}=${value}: ${err.message}`, denied ? permissionHint() : undefined);
  }
}

/** One step for several sysctls; undo puts back the values it changed. */
export function sysctlStep(writes: SysctlWrites): Step {
  const previous: SysctlWrites = [];
  return {
    show: writes.map(([k, v]) => `sysctl -w ${k.replace(/\//g, '.')}=${v}`),
    async do() {
      for (const [k, v] of writes) {
        const old = readSysctl(k);
        if (old === v) continue;
        if (old === null && k.startsWith('net/bridge/')) {
          const hint = isRootless() ? 'ask root on the host to run: modprobe br_netfilter (a user namespace cannot load modules)' : 'run: modprobe br_netfilter';
          throw environment(`${k.replace(/\//g, '.')} is missing: the br_netfilter module is not loaded`, hint);
        }
        if (writeSysctl(k, v) && old !== null) previous.push([k, old]);
      }
    },
    async undo() {
      for (const [k, v] of previous.reverse()) {
        try {
          writeSysctl(k, v);
        } catch {} // the interface may be gone already, taking its sysctl with it
      }
    },
  };
}
