// Is the namespace at an endpoint's path still the one it was attached to? Names and PIDs are
// reused, and so are namespace inode numbers (the kernel hands a freed one out again, often
// to the next namespace made under the same name), so brnet checks, from cheapest to dearest:
//   1. the namespace file exists, is a namespace, is not brnet's own, and has the recorded
//      dev and ino (anything else: not the endpoint's);
//   2. pid:PID: the process has the recorded start time (a new process with the PID has not);
//   3. the endpoint's host-side veth is alive with the endpoint's mark: its peer is inside, so
//      the namespace it was born in is alive, and no other namespace can hold its inode;
//   4. a namespace brnet created (veth gone, say after `ip link del`): its loopback carries
//      the token recorded at creation (one `ip` process inside, only in this case).
// A namespace none of these prove is not the endpoint's: reported stale, never configured,
// entered or deleted. An endpoint recorded by an older brnet, without identity, is proven by
// (1)+(3) alone, and its identity recorded by the next `restore`.
import { isOwnMark, netnsMark } from '../net/marks.ts';
import type { Endpoint, Network, NetnsIdentity } from '../state/schema.ts';
import type { Host } from './host.ts';

/** ok: proven; gone: no namespace there; other: a namespace that is not (or not provably) the endpoint's. */
export type Presence = 'ok' | 'gone' | 'other';

export const pidOf = (ep: Pick<Endpoint, 'netns'>): string | null => /^pid:(\d+)$/.exec(ep.netns)?.[1] ?? null;

/** Does the endpoint's own host-side veth still exist, with its mark? (sysfs, no process) */
export const vethAlive = (n: Network, ep: Endpoint, instance: string | null, host: Host): boolean =>
  isOwnMark(host.linkAlias(ep.hostIfname), instance, `${n.name}:${ep.name}`);

/**
 * Steps 1-3 (no process); 'maybe' when only the loopback's token can tell (step 4).
 * `attached`: the veth is known to be a port of the network's bridge, which brnet has proven
 * its own (core/drift.ts lists each bridge's ports once): a port of brnet's bridge under the
 * name brnet recorded is its veth, without reading its mark. With a recorded identity one
 * stat says enough for step 1: the same dev means the same (nsfs) file system, and the
 * namespace file system's inode numbers are unique among living namespaces.
 */
export function quickPresence(n: Network, ep: Endpoint, instance: string | null, host: Host, attached = false): Presence | 'maybe' {
  const rec = ep.netnsIdentity;
  const alive = () => attached || vethAlive(n, ep, instance, host);
  if (!rec) {
    const status = host.netnsStatus(ep.netnsPath);
    if (status === 'missing') return 'gone';
    return status === 'ok' && alive() ? 'ok' : 'other';
  }
  const id = host.nsStat(ep.netnsPath);
  if (!id) return 'gone';
  if (rec.dev !== id.dev || rec.ino !== id.ino) return host.netnsStatus(ep.netnsPath) === 'missing' ? 'gone' : 'other';
  const self = host.nsStat('/proc/self/ns/net');
  if (self && self.dev === id.dev && self.ino === id.ino) return 'other'; // brnet's own namespace
  const pid = pidOf(ep);
  if (pid) return rec.start !== null && host.processStart(pid) === rec.start ? 'ok' : 'other';
  if (alive()) return 'ok';
  return rec.token ? 'maybe' : 'other';
}

/** Is the loopback's mark the one brnet left when it created the namespace? */
export async function hasOwnLoopback(path: string, instance: string | null, token: string, host: Host): Promise<boolean> {
  try {
    return (await host.netns(path)).aliases.lo === netnsMark(instance, token);
  } catch {
    return false; // cannot be entered: not provably brnet's
  }
}

export async function presence(n: Network, ep: Endpoint, instance: string | null, host: Host, attached = false): Promise<Presence> {
  const quick = quickPresence(n, ep, instance, host, attached);
  if (quick !== 'maybe') return quick;
  return (await hasOwnLoopback(ep.netnsPath, instance, ep.netnsIdentity?.token ?? '', host)) ? 'ok' : 'other';
}

/** The identity to record for an endpoint joining the namespace at `path` now. */
export function identityNow(ep: Pick<Endpoint, 'netns' | 'netnsPath'>, host: Host, token: string | null): NetnsIdentity {
  const id = host.nsIdentity(ep.netnsPath) ?? { dev: 0, ino: 0 };
  const pid = pidOf(ep);
  return { ...id, start: pid ? host.processStart(pid) : null, token };
}

/** Endpoints of the state whose namespace is not provably theirs, with why. */
export async function staleEndpoints(state: { instance: string | null; networks: Network[] }, host: Host): Promise<Map<Endpoint, Presence>> {
  const out = new Map<Endpoint, Presence>();
  const checks: Promise<void>[] = [];
  for (const n of state.networks) {
    // One listing of the bridge's ports instead of a mark read per endpoint (see quickPresence).
    const link = n.endpoints.length ? host.links().links.get(n.bridge) : undefined;
    const ports = link && isOwnMark(link.alias, state.instance, n.name) ? host.bridgePorts(n.bridge) : null;
    for (const ep of n.endpoints) {
      checks.push(
        presence(n, ep, state.instance, host, ports?.has(ep.hostIfname) ?? false).then((p) => {
          if (p !== 'ok') out.set(ep, p);
        }),
      );
    }
  }
  await Promise.all(checks);
  return out;
}
