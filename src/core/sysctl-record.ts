// What brnet changed of the host's sysctls, kept in the state (`sysctls`), and what `reset`
// makes of it: every value brnet changed goes back to the one it had before brnet first
// changed it, as long as it still has brnet's value (someone who changed it since meant it).
// Pure: the writes come from net/sysctl.ts, the current values from whoever calls.
import type { SysctlWrites } from '../net/sysctl.ts';
import type { State, Sysctls } from '../state/schema.ts';
import { isSysctlKey } from '../validate/values.ts';

/** The interface a per-interface key is about (net/ipv4/conf/IF/x), null for host-wide keys. */
function interfaceOf(key: string): string | null {
  const p = key.split('/');
  return p.length === 5 && p[2] === 'conf' && p[3] !== 'all' && p[3] !== 'default' ? (p[3] ?? null) : null;
}

/**
 * The record with this call's changes added. The first value before brnet stays the one to go
 * back to; the keys of bridges brnet created are left out (they go with the bridge).
 */
export function recordSysctls(rec: Sysctls, changed: ReadonlyMap<string, { before: string; set: string }>, createdBridges: ReadonlySet<string>): Sysctls {
  let next: Sysctls['changed'] | null = null;
  for (const [key, { before, set }] of changed) {
    const dev = interfaceOf(key);
    if ((dev && createdBridges.has(dev)) || !isSysctlKey(key)) continue;
    next ??= { ...rec.changed };
    next[key] = { before: next[key]?.before ?? before, set };
  }
  return next ? { ...rec, changed: next } : rec;
}

/** The record of a state that is about to be written, with what this call changed. */
export function withSysctlsRecorded(state: State, changed: ReadonlyMap<string, { before: string; set: string }>): State {
  if (!changed.size) return state;
  const created = new Set(state.networks.filter((n) => n.bridgeCreated).map((n) => n.bridge));
  const sysctls = recordSysctls(state.sysctls, changed, created);
  return sysctls === state.sysctls ? state : { ...state, sysctls };
}

/**
 * The host-wide keys net/bridge.ts networkSysctls may set, with brnet's value: what an older
 * brnet may have changed without recording it.
 */
export const HOST_WIDE: SysctlWrites = [
  ['net/ipv4/ip_forward', '1'],
  ['net/ipv6/conf/all/forwarding', '1'],
  ['net/ipv6/conf/default/forwarding', '1'],
  ['net/bridge/bridge-nf-call-iptables', '1'],
  ['net/bridge/bridge-nf-call-ip6tables', '1'],
];

export interface SysctlRevert {
  key: string;
  /** brnet's value, which it must still have. */
  from: string;
  to: string;
}

export interface SysctlKept {
  key: string;
  value: string;
  why: string;
}

/**
 * What `reset` does with each sysctl: put back (`revert`), or leave, and why (`kept`).
 * `unrecorded`: the keys an older brnet may have set without recording them, with its value.
 */
export function revertPlan(rec: Sysctls, current: (key: string) => string | null, unrecorded: SysctlWrites = HOST_WIDE): { revert: SysctlRevert[]; kept: SysctlKept[] } {
  const revert: SysctlRevert[] = [];
  const kept: SysctlKept[] = [];
  for (const [key, { before, set }] of Object.entries(rec.changed).sort(([a], [b]) => a.localeCompare(b))) {
    const now = current(key);
    if (now === null || before === set) continue; // gone with its interface, or nothing to undo
    if (now === set) revert.push({ key, from: set, to: before });
    else kept.push({ key, value: now, why: `changed since brnet set it to ${set}` });
  }
  if (rec.incomplete) {
    for (const [key, set] of unrecorded) {
      if (key in rec.changed || current(key) !== set) continue;
      kept.push({ key, value: set, why: 'possibly set by an older brnet, which did not record the value before: left as it is' });
    }
  }
  return { revert, kept };
}

/** "net/ipv4/ip_forward" as people write it: net.ipv4.ip_forward. */
export const dotted = (key: string): string => key.replace(/\//g, '.');
