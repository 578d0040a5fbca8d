// Every older on-disk shape gets one function that lifts it to the next version, so a state
// file written by any earlier brnet keeps working. Version 0 is the pre-release layout that
// had no `version` field and no `config` block.
import { environment } from '../errors.ts';
import { STATE_VERSION, emptyState } from './schema.ts';

type Raw = Record<string, unknown>;

const steps: Record<number, (s: Raw) => Raw> = {
  0: (s) => ({ ...s, version: 1, config: s.config ?? emptyState().config, networks: s.networks ?? [] }),
};

export function migrate(raw: unknown, file: string): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw; // the schema reports it
  let s = raw as Raw;
  let v = typeof s.version === 'number' ? s.version : 0;
  if (v > STATE_VERSION) {
    throw environment(
      `state file ${file} has version ${v}, newer than this brnet understands (${STATE_VERSION})`,
      'upgrade brnet',
    );
  }
  while (v < STATE_VERSION) {
    const step = steps[v];
    if (!step) throw environment(`state file ${file}: no migration from version ${v}`);
    s = step(s);
    v = s.version as number;
  }
  return fill(s);
}

/**
 * Fields added within version 1 get their neutral value: no instance yet (the next change
 * assigns one), namespace identities unproven (core/identity.ts proves or declares them
 * stale), no links.
 */
function fill(s: Raw): Raw {
  if (!('instance' in s)) s = { ...s, instance: null };
  if (s.config && typeof s.config === 'object' && !('firewallBackend' in s.config)) s = { ...s, config: { firewallBackend: 'iptables', ...(s.config as Raw) } };
  // brnet changed sysctls before it recorded them: only a state dir that was never used is sure to have none.
  if (!('sysctls' in s)) s = { ...s, sysctls: { changed: {}, incomplete: s.instance !== null || (Array.isArray(s.networks) && s.networks.length > 0) } };
  if (!Array.isArray(s.networks)) return s;
  const eps: Raw[] = [];
  for (const n of s.networks as unknown[]) {
    if (typeof n !== 'object' || n === null || !Array.isArray((n as Raw).endpoints)) continue;
    for (const e of (n as Raw).endpoints as unknown[]) if (typeof e === 'object' && e !== null) eps.push(e as Raw);
  }
  for (const e of eps) if (!('netnsIdentity' in e)) e.netnsIdentity = null;
  for (const e of eps) if (!('links' in e)) e.links = [];
  // The attachment order was the `created` time: numbered in that order (ties as listed).
  const unnumbered = eps.filter((e) => !('seq' in e));
  if (unnumbered.length) {
    let next = Math.max(0, ...eps.map((e) => (typeof e.seq === 'number' ? e.seq : 0)));
    const when = (e: Raw) => (typeof e.created === 'string' ? e.created : '');
    for (const e of unnumbered.map((e, i) => ({ e, i })).sort((a, b) => when(a.e).localeCompare(when(b.e)) || a.i - b.i)) e.e.seq = ++next;
  }
  return s;
}
