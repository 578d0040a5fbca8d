// Compares the kernel with the state: the shared ground of `brnet check` (report) and
// `brnet restore` (converge). Reads the host once (`ip -batch`, one `iptables-save` per
// family); never changes anything.
import { type KernelRules, normalizeSpec } from '../firewall/iptables.ts';
import { type Family, TABLES, enabledFamilies, jumps, renderRules, type Ruleset } from '../firewall/rules.ts';
import { bridgeAddresses } from '../net/bridge.ts';
import type { HostView } from '../net/host.ts';
import type { Network, State } from '../state/schema.ts';
import type { Host } from './host.ts';

export interface Drift {
  kind: 'missing' | 'wrong' | 'leftover';
  what: string;
}

export interface StaleEndpoint {
  network: string;
  endpoint: string;
  netns: string;
}

export interface Comparison {
  host: HostView;
  kernel: Record<Family, KernelRules | null>;
  desired: Ruleset;
  drift: Drift[];
  stale: StaleEndpoint[];
  /** Devices carrying brnet's marker that the state does not know. */
  orphanLinks: string[];
}

/** Compares the kernel, as `host` shows it, with the state. */
export async function compare(state: State, host: Host): Promise<Comparison> {
  // The processes start now; the sysfs and /run/netns lookups below (many with a thousand
  // endpoints) run while they work.
  const pending = Promise.all([
    host.bridgeAddresses(),
    state.config.iptables ? host.firewall(4) : Promise.resolve(null),
    state.config.ip6tables ? host.firewall(6) : Promise.resolve(null),
  ]);
  const drift: Drift[] = [];
  const stale: StaleEndpoint[] = [];
  const exists = (path: string) => host.netnsExists(path);

  const knownLinks = new Set<string>();
  const present = new Set<Network>();
  for (const n of state.networks) {
    knownLinks.add(n.bridge);
    // One directory listing per bridge (its ports) instead of a lookup per endpoint.
    const ports = checkBridge(n, drift, host);
    if (ports) present.add(n);
    for (const ep of n.endpoints) {
      knownLinks.add(ep.hostIfname);
      if (!exists(ep.netnsPath)) {
        stale.push({ network: n.name, endpoint: ep.name, netns: ep.netns });
        continue;
      }
      if (ports?.has(ep.hostIfname)) continue;
      const master = host.linkMaster(ep.hostIfname);
      if (master === undefined) drift.push({ kind: 'missing', what: `veth ${ep.hostIfname} of endpoint ${n.name}/${ep.name}` });
      else if (master !== n.bridge) {
        drift.push({ kind: 'wrong', what: `veth ${ep.hostIfname} of endpoint ${n.name}/${ep.name} is not attached to ${n.bridge}` });
      }
    }
  }
  const orphanLinks: string[] = [];
  for (const name of host.linkNames()) {
    if (knownLinks.has(name)) continue;
    const alias = host.linkAlias(name);
    if (!alias?.startsWith('brnet:')) continue;
    orphanLinks.push(name);
    drift.push({ kind: 'leftover', what: `device ${name} (${alias}) is not in the state` });
  }

  const [addresses, k4, k6] = await pending;
  for (const n of present) checkAddresses(n, addresses, drift);
  const kernel = { 4: k4, 6: k6 } as Record<Family, KernelRules | null>;
  const desired = renderRules(state);
  for (const f of enabledFamilies(state)) {
    const k = kernel[f];
    if (k) checkRules(f, desired, k, drift);
  }
  return { host: addresses, kernel, desired, drift, stale, orphanLinks };
}

/**
 * The bridge device itself; returns its ports, or null when it is missing or not a bridge.
 * One listing of its ports says which veths are attached, so endpoints need no lookup each.
 */
function checkBridge(n: Network, drift: Drift[], host: Host): Set<string> | null {
  const ports = host.bridgePorts(n.bridge);
  const link = host.links().links.get(n.bridge);
  if (!ports || !link) {
    if (link) drift.push({ kind: 'wrong', what: `device ${n.bridge} of network ${n.name} is not a bridge` });
    else drift.push({ kind: 'missing', what: `bridge ${n.bridge} of network ${n.name}` });
    return null;
  }
  if (!link.up) drift.push({ kind: 'wrong', what: `bridge ${n.bridge} of network ${n.name} is down` });
  if (n.mtu && link.mtu !== n.mtu) drift.push({ kind: 'wrong', what: `bridge ${n.bridge} has MTU ${link.mtu}, not ${n.mtu}` });
  return ports;
}

function checkAddresses(n: Network, host: HostView, drift: Drift[]): void {
  const have = new Set(host.addrs.filter((a) => a.dev === n.bridge).map((a) => `${a.local}/${a.prefixlen}`));
  const { v4, v6 } = bridgeAddresses(n);
  for (const a of [v4, v6]) if (a && !have.has(a)) drift.push({ kind: 'missing', what: `address ${a} on bridge ${n.bridge} of network ${n.name}` });
}

function checkRules(f: Family, desired: Ruleset, k: KernelRules, drift: Drift[]): void {
  const v = `IPv${f}`;
  let wantAny = false;
  for (const t of TABLES) {
    for (const [chain, rules] of desired[f][t]) {
      wantAny = true;
      const got = k.tables[t].get(chain);
      if (!got) {
        drift.push({ kind: 'missing', what: `${v} chain ${t}/${chain}` });
        continue;
      }
      const gotSet = new Set(got);
      const wantSet = new Set(rules);
      const missing = rules.filter((r) => !gotSet.has(r));
      const extra = got.filter((r) => !wantSet.has(r));
      for (const r of missing) drift.push({ kind: 'missing', what: `${v} rule in ${t}/${chain}: ${r}` });
      for (const r of extra) drift.push({ kind: 'leftover', what: `${v} rule in ${t}/${chain}: ${r}` });
      if (!missing.length && !extra.length && got.join('\n') !== rules.join('\n')) {
        drift.push({ kind: 'wrong', what: `${v} chain ${t}/${chain} has its rules out of order` });
      }
    }
    for (const chain of k.tables[t].keys()) {
      if (!desired[f][t].has(chain)) drift.push({ kind: 'leftover', what: `${v} chain ${t}/${chain} is not in the state` });
    }
  }
  for (const j of jumps()) {
    const n = k.jumps.filter((x) => x.table === j.table && x.chain === j.chain && x.spec === normalizeSpec(j.spec)).length;
    if (wantAny && n === 0) drift.push({ kind: 'missing', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]}` });
    if (wantAny && n > 1) drift.push({ kind: 'leftover', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]} appears ${n} times` });
    if (!wantAny && n > 0) drift.push({ kind: 'leftover', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]}` });
  }
  // Any other rule in a built-in chain that names brnet (an old jump layout, say).
  const known = new Set(jumps().map((j) => `${j.table}/${j.chain}/${normalizeSpec(j.spec)}`));
  for (const x of k.jumps) {
    if (!known.has(`${x.table}/${x.chain}/${x.spec}`)) drift.push({ kind: 'leftover', what: `${v} rule in ${x.table}/${x.chain}: ${x.spec}` });
  }
}
