// Sysctls are written straight to /proc/sys (no process), read first and skipped when the
// value is already right, as netavark does. Values are per network namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { environment } from '../errors.ts';
import type { Step } from '../plan/steps.ts';

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

function writeSysctl(key: string, value: string): void {
  try {
    writeFileSync(keyPath(key), value);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS' ? 'run brnet as root' : undefined;
    throw environment(`cannot set ${key.replace(/\//g, '.')}=${value}: ${err.message}`, hint);
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
          throw environment(`${k.replace(/\//g, '.')} is missing: the br_netfilter module is not loaded`, 'run: modprobe br_netfilter');
        }
        writeSysctl(k, v);
        if (old !== null) previous.push([k, old]);
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
