// Compares the kernel with the state: the shared ground of `brnet check` (report) and
// `brnet restore` (converge). Reads the host once (`ip -batch`, and the firewall through
// firewall/index.ts); never changes anything.
import type { FirewallComparison } from '../firewall/index.ts';
import { bridgeAddresses, ownsBridge } from '../net/bridge.ts';
import { ownerOf, parseMark } from '../net/marks.ts';
import { namedNetnsPath } from '../net/rootless.ts';
import type { Pending } from '../state/journal.ts';
import { isIfname } from '../validate/values.ts';
import { hasOwnLoopback, presence } from './identity.ts';
import type { HostView } from '../net/host.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import type { Host } from './host.ts';

export interface Drift {
  /** conflict: a device under brnet's name that is not brnet's; foreign: another instance's object. */
  kind: 'missing' | 'wrong' | 'leftover' | 'conflict' | 'foreign';
  what: string;
}

export interface StaleEndpoint {
  network: string;
  endpoint: string;
  netns: string;
  /** gone: no namespace there; other: a namespace that is not provably the endpoint's. */
  reason: 'gone' | 'other';
}

export interface Comparison {
  host: HostView;
  /** The firewall's side, and how to repair it. */
  firewall: FirewallComparison;
  drift: Drift[];
  stale: StaleEndpoint[];
  /** Devices carrying this instance's mark that the state does not know. */
  orphanLinks: string[];
  /** Namespaces brnet created (noted, and marked inside) that no endpoint uses. */
  orphanNetns: Pending[];
  /** Networks whose bridge name is held by a device that is not brnet's: never touched. */
  conflicts: Map<Network, string>;
  /** Endpoints proven to be in their namespace. */
  present: Set<Endpoint>;
  /** Namespaces brnet created that are gone (after a reboot): `restore` makes them again. */
  recreate: Set<Endpoint>;
  /** Another instance's objects, as "what" texts, and its id. */
  foreign: { what: string; instance: string }[];
}

/** Compares the kernel, as `host` shows it, with the state. */
export async function compare(state: State, host: Host): Promise<Comparison> {
  // The processes start now; the sysfs and /run/netns lookups below (many with a thousand
  // endpoints) run while they work.
  const pending = Promise.all([
    host.bridgeAddresses(),
    import('../firewall/index.ts').then((m) => m.firewallCompare(state, { iptables: host.firewall, nftables: host.nftables, migrating: host.migrating })),
    host.firewalld(),
  ]);
  const instance = state.instance;
  const drift: Drift[] = [];
  const stale: StaleEndpoint[] = [];
  const conflicts = new Map<Network, string>();
  const foreign: Comparison['foreign'] = [];
  const present = new Set<Endpoint>();
  const recreate = new Set<Endpoint>();

  const knownLinks = new Set<string>();
  const presentNets = new Set<Network>();
  const checks: Promise<void>[] = [];
  for (const n of state.networks) {
    knownLinks.add(n.bridge);
    const conflict = bridgeConflict(n, host, instance);
    if (conflict) {
      conflicts.set(n, conflict.what);
      drift.push(conflict);
      if (conflict.kind === 'foreign') foreign.push({ what: `bridge ${n.bridge}`, instance: parseMark(host.linkAlias(n.bridge))?.instance ?? '?' });
    }
    // One directory listing per bridge (its ports) instead of a lookup per endpoint.
    const ports = conflict ? null : checkBridge(n, drift, host);
    if (ports) presentNets.add(n);
    for (const ep of n.endpoints) {
      knownLinks.add(ep.hostIfname);
      checks.push(
        presence(n, ep, instance, host, ports?.has(ep.hostIfname) ?? false).then((p) => {
          if (p === 'gone' && ep.netnsCreated) {
            recreate.add(ep);
            drift.push({ kind: 'missing', what: `namespace ${ep.netns} of endpoint ${n.name}/${ep.name}` });
            return;
          }
          if (p !== 'ok') {
            stale.push({ network: n.name, endpoint: ep.name, netns: ep.netns, reason: p });
            return;
          }
          present.add(ep);
          if (conflict || ports?.has(ep.hostIfname)) return;
          const master = host.linkMaster(ep.hostIfname);
          if (master === undefined) drift.push({ kind: 'missing', what: `veth ${ep.hostIfname} of endpoint ${n.name}/${ep.name}` });
          else if (master !== n.bridge) {
            drift.push({ kind: 'wrong', what: `veth ${ep.hostIfname} of endpoint ${n.name}/${ep.name} is not attached to ${n.bridge}` });
          }
        }),
      );
    }
  }
  const orphanLinks: string[] = [];
  for (const name of host.linkNames()) {
    if (knownLinks.has(name)) continue;
    const alias = host.linkAlias(name);
    const whose = ownerOf(alias, instance);
    if (whose !== 'none' && !isIfname(name)) {
      // brnet never gives such a name ('#', blanks, '+'…): someone copied its mark. The name
      // could not even be written safely into the `ip -batch` line that would delete it.
      drift.push({ kind: 'conflict', what: `device ${JSON.stringify(name)} carries brnet's mark but no name brnet gives: left alone` });
    } else if (whose === 'ours') {
      orphanLinks.push(name);
      drift.push({ kind: 'leftover', what: `device ${name} (${alias}) is not in the state` });
    } else if (whose === 'foreign') {
      const other = parseMark(alias)?.instance ?? '?';
      foreign.push({ what: `device ${name}`, instance: other });
      drift.push({ kind: 'foreign', what: `device ${name} (${alias}) belongs to brnet instance ${other}` });
    }
  }
  await Promise.all(checks);
  const orphanNetns = await orphanNamespaces(state, host, drift);

  const [addresses, firewall, firewalld] = await pending;
  for (const n of presentNets) checkAddresses(n, addresses, drift);
  drift.push(...firewall.drift);
  if (firewalld) {
    const { firewalldDrift } = await import('../firewall/firewalld.ts');
    drift.push(...firewalldDrift(firewalld, state.networks.filter((n) => !conflicts.has(n)).map((n) => n.bridge)));
  }
  foreign.push(...firewall.foreign);
  // A stable order for people and scripts, whatever order the checks finished in.
  stale.sort((a, b) => a.network.localeCompare(b.network) || a.endpoint.localeCompare(b.endpoint));
  return { host: addresses, firewall, drift, stale, orphanLinks, orphanNetns, conflicts, present, recreate, foreign };
}

/** A device under the bridge's name that brnet did not make for this network. */
function bridgeConflict(n: Network, host: Host, instance: string | null): Drift | null {
  if (!n.bridgeCreated) return null; // adopted: the user's device, whatever it carries
  const link = host.links().links.get(n.bridge);
  if (!link || ownsBridge(n, link, instance)) return null;
  const mark = parseMark(link.alias);
  if (mark?.instance && mark.instance !== instance) {
    return { kind: 'foreign', what: `device ${n.bridge} of network ${n.name} belongs to brnet instance ${mark.instance}` };
  }
  const why = link.alias ? (mark ? "brnet's mark for another network or another MAC" : `the alias ${link.alias}`) : 'no brnet mark';
  return { kind: 'conflict', what: `device ${n.bridge} of network ${n.name} is not brnet's (${why}): left alone` };
}

/**
 * Namespaces noted by calls that were creating them (state/journal.ts) that no endpoint uses
 * and whose loopback carries the noted token: left by a call that was killed.
 */
async function orphanNamespaces(state: State, host: Host, drift: Drift[]): Promise<Pending[]> {
  const used = new Set(state.networks.flatMap((n) => n.endpoints.map((e) => e.netnsIdentity?.token ?? '')));
  const out: Pending[] = [];
  for (const p of host.pendingNetns()) {
    if (used.has(p.token) || host.netnsStatus(namedNetnsPath(p.name)) !== 'ok') continue;
    if (!(await hasOwnLoopback(namedNetnsPath(p.name), state.instance, p.token, host))) continue;
    out.push(p);
    drift.push({ kind: 'leftover', what: `namespace ${p.name} (created by a call that did not finish) is not in the state` });
  }
  return out;
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
