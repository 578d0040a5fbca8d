// Sysctls are written straight to /proc/sys (no process), read first and skipped when the
// value is already right, as netavark does. Values are per network namespace; rootless, one
// that cannot be written is left alone with a warning.
import { readFileSync, writeFileSync } from 'node:fs';
import { environment } from '../errors.ts';
import type { Step } from '../plan/steps.ts';
import { isRootless, netAdminProblem, permissionHint, warnOnce } from './rootless.ts';

export type SysctlWrites = [key: string, value: string][];

/**
 * Every value this call changed, by key: the value before its first change and the last one
 * written. The runner records it in the state it writes (core/sysctl-record.ts), so that
 * `reset` can put the old values back; a step undone takes its entries out again.
 */
const changedNow = new Map<string, { before: string; set: string }>();

export function sysctlsChanged(): ReadonlyMap<string, { before: string; set: string }> {
  return changedNow;
}

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
        if (writeSysctl(k, v) && old !== null) {
          previous.push([k, old]);
          changedNow.set(k, { before: changedNow.get(k)?.before ?? old, set: v });
        }
      }
    },
    async undo() {
      for (const [k, v] of previous.reverse()) {
        const rec = changedNow.get(k);
        if (rec?.before === v) changedNow.delete(k);
        else if (rec) rec.set = v;
        try {
          writeSysctl(k, v);
        } catch {} // the interface may be gone already, taking its sysctl with it
      }
    },
  };
}

/**
 * Puts values back (`reset`): each only while it still has the value brnet set, read when the
 * step runs; undone by writing brnet's value again. Nothing of it is recorded as brnet's.
 */
export function sysctlRevertStep(reverts: { key: string; from: string; to: string }[]): Step {
  const done: typeof reverts = [];
  return {
    show: reverts.map((r) => `sysctl -w ${r.key.replace(/\//g, '.')}=${r.to}`),
    async do() {
      for (const r of reverts) {
        if (readSysctl(r.key) !== r.from) continue;
        writeSysctl(r.key, r.to);
        done.push(r);
      }
    },
    async undo() {
      for (const r of done.reverse()) {
        try {
          writeSysctl(r.key, r.from);
        } catch {}
      }
    },
  };
}
