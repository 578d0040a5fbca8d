// endpoint rm: firewall, route hand-over, one tolerant ip -batch deleting veths and the
// namespaces brnet created, conntrack. The removal steps serve `network rm --force` too.
// Its own module, so that removing loads none of what adding needs (address assignment and
// its IP library, the option parser).
import { notFound } from '../errors.ts';
import type { Host } from './host.ts';
import { presence, vethAlive } from './identity.ts';
import { ipBatchStep } from '../net/ipcmd.ts';
import { deleteOwnNetnsStep, inRunNetns } from '../net/netns-own.ts';
import { tolerantBatchStep, vethsGoneStep } from '../net/veth.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { type Member, defaultRouteOwners, membersIn, routeLine } from './default-routes.ts';
import { withoutLinksTo } from './links.ts';
import { findNetwork, resolveNetwork } from './lookup.ts';
import type { Step } from '../plan/steps.ts';
import type { Operation, Plan } from './runner.ts';

export interface Removed {
  removed: string[];
}

export function removeEndpoints(network: string, names: string[], opts: { ifExists?: boolean }): Operation<Removed> {
  return { what: `remove endpoint${names.length > 1 ? 's' : ''} ${names.map((n) => `${network}/${n}`).join(', ')}`, plan: async (state, host): Promise<Plan<Removed>> => {
    const none = { state: null, steps: [], result: { removed: [] } };
    const found = resolveNetwork(state, network);
    if (!found && opts.ifExists) return none;
    const n = found ?? findNetwork(state, network); // the usual not-found error
    const gone: Endpoint[] = [];
    for (const name of new Set(names)) {
      const ep = n.endpoints.find((e) => e.name === name);
      if (ep) gone.push(ep);
      else if (!opts.ifExists) throw notFound(`endpoint ${name} not found in network ${n.name}`, `list them with: brnet endpoint ls ${n.name}`);
    }
    if (!gone.length) return none;
    const nextNet: Network = { ...n, endpoints: withoutLinksTo(n.endpoints.filter((e) => !gone.includes(e)), gone) };
    const next: State = { ...state, networks: state.networks.map((x) => (x === n ? nextNet : x)) };
    // The firewall (reversible) first, the deletions (which cannot be undone) after it.
    const cleanups: Step[] = [];
    const withPorts = gone.filter((e) => e.ports.length);
    if (withPorts.length) {
      const { conntrackStep } = await import('../net/conntrack.ts');
      for (const ep of withPorts) cleanups.push(conntrackStep(n, ep, ep.ports));
    }
    const removal = await endpointsRemoveSteps(gone.map((endpoint) => ({ network: n, endpoint })), host, next);
    return { state: next, steps: removal.steps, afterFirewall: cleanups, atEnd: removal.atEnd, result: { removed: gone.map((e) => e.name) } };
  } };
}

/**
 * When an endpoint that carried a namespace's default route leaves, the next endpoint in line
 * (see defaultRouteOwners) takes the route over, so the kernel keeps matching the state.
 * `route replace` runs before the old veth goes, so there is no moment without a route.
 * Only into a namespace proven to be the remaining endpoints' (core/identity.ts).
 */
async function routeHandoverSteps(gone: Member[], next: State, host: Host): Promise<Step[]> {
  const steps: Step[] = [];
  for (const path of new Set(gone.map((g) => g.endpoint.netnsPath))) {
    const remaining = membersIn(next, path);
    if (!remaining.length) continue;
    const before = defaultRouteOwners([...remaining, ...gone.filter((g) => g.endpoint.netnsPath === path)]);
    const after = defaultRouteOwners(remaining);
    const lines = after
      .filter((o) => before.some((b) => b.family === o.family && gone.some((g) => g.endpoint === b.endpoint)))
      .map((o) => routeLine(o, 'replace'));
    if (!lines.length) continue;
    const first = remaining[0]!;
    if ((await presence(first.network, first.endpoint, next.instance, host)) === 'ok') steps.push(ipBatchStep(lines, [], path));
  }
  return steps;
}

/**
 * Delete the endpoints' veths, and the namespaces brnet created that no endpoint uses any more.
 * Only what is provably brnet's: a veth with the endpoint's mark, a namespace proven to be the
 * one brnet created (core/identity.ts); an endpoint whose namespace is gone or someone else's
 * now is only forgotten.
 * A veth whose namespace goes too is not deleted on its own: deleting the namespace takes the
 * pair with it, and the kernel tears dying namespaces down in batches, while each `ip link
 * del` waits for RCU on its own, which adds up to seconds for many endpoints. The step
 * waits until those veths are gone from the host, so the call ends with the host as the state
 * says; a veth still there after the wait (a process keeps its namespace alive) is deleted.
 */
export async function endpointsRemoveSteps(gone: Member[], host: Host, next: State): Promise<{ steps: Step[]; atEnd: Step[] }> {
  const instance = next.instance;
  const delNs = new Set<string>();
  for (const { network, endpoint: ep } of gone) {
    // netnsCreated is set only for named namespaces, whose spec is the name.
    if (!ep.netnsCreated || membersIn(next, ep.netnsPath).length || delNs.has(ep.netns)) continue;
    if ((await presence(network, ep, instance, host)) === 'ok') delNs.add(ep.netns);
  }
  const lines: string[] = [];
  const withNs: string[] = [];
  for (const { network, endpoint: ep } of gone) {
    if (!vethAlive(network, ep, instance, host)) continue;
    if (ep.netnsCreated && delNs.has(ep.netns)) withNs.push(ep.hostIfname);
    else lines.push(`link del dev ${ep.hostIfname}`);
  }
  // A namespace brnet made outside /run/netns (rootless) is deleted by path, not by `ip netns del`.
  const ownNs: string[] = [];
  for (const name of delNs) {
    const path = gone.find((g) => g.endpoint.netns === name)?.endpoint.netnsPath ?? '';
    if (inRunNetns(path)) lines.push(`netns del ${name}`);
    else ownNs.push(path);
  }
  const steps = await routeHandoverSteps(gone, next, host);
  if (lines.length) steps.push(tolerantBatchStep(lines));
  if (ownNs.length) steps.push({ ...deleteOwnNetnsStep(ownNs), irreversible: true });
  return { steps, atEnd: withNs.length ? [vethsGoneStep(withNs)] : [] };
}

