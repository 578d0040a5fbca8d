// Which endpoint carries a namespace's default route, per address family: a namespace may be
// attached to several networks, and exactly one of its endpoints (the first one added that
// wants a route) routes each family. Removing it hands the route over to the next.
import type { Family } from '../net/addr-text.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';

export interface Member {
  network: Network;
  endpoint: Endpoint;
}
export interface RouteOwner extends Member {
  family: Family;
  gateway: string;
}

/** Families for which the endpoint may carry the namespace's default route. */
export function routeFamilies(n: Network, ep: Endpoint): Family[] {
  if (n.internal) return [];
  const out: Family[] = [];
  if (ep.ipv4 && n.ipv4?.gateway) out.push(4);
  if (ep.ipv6 && n.ipv6?.gateway) out.push(6);
  return out;
}

/** Every brnet endpoint attached to the namespace at `netnsPath`. */
export function membersIn(state: State, netnsPath: string): Member[] {
  // A plain loop: called twice per endpoint added, over every endpoint of the host.
  const out: Member[] = [];
  for (const network of state.networks) for (const endpoint of network.endpoints) if (endpoint.netnsPath === netnsPath) out.push({ network, endpoint });
  return out;
}

/**
 * Which endpoint carries the default route of each family in one namespace: the first attached
 * (by `seq`, a counter: a clock stepped back must not reorder them) among those with
 * `defaultRoute`, family by family. A function of the state, so `endpoint rm` can hand a route
 * over when its carrier leaves, and restore can rebuild routes.
 */
export function defaultRouteOwners(members: Member[]): RouteOwner[] {
  const sorted = [...members].sort((a, b) => a.endpoint.seq - b.endpoint.seq);
  const owners: RouteOwner[] = [];
  for (const m of sorted) {
    if (!m.endpoint.defaultRoute) continue;
    for (const family of routeFamilies(m.network, m.endpoint)) {
      if (owners.some((o) => o.family === family)) continue;
      const gateway = (family === 4 ? m.network.ipv4 : m.network.ipv6)?.gateway;
      if (gateway) owners.push({ ...m, family, gateway });
    }
  }
  return owners;
}

/** The next endpoint's place in the attachment order. */
export function nextSeq(state: State): number {
  let max = 0;
  for (const n of state.networks) for (const e of n.endpoints) if (e.seq > max) max = e.seq;
  return max + 1;
}

export const routeLine = (o: RouteOwner, verb: 'add' | 'replace') => `route ${verb} default via ${o.gateway} dev ${o.endpoint.ifname}`;
