// Finding objects in the state, with the not-found errors every command shares.
import { invalid, notFound } from '../errors.ts';
import { ipFamily } from '../net/addr-text.ts';
import { type Endpoint, type Network, type Port, type State, modeOf } from '../state/schema.ts';

/** Docker accepts an ID prefix of any length; four hex digits keep typos from matching. */
const ID_PREFIX = /^[0-9a-f]{4,64}$/;

/**
 * The network a user named: by its name, else by its full ID or a unique ID prefix (as Docker
 * does). A name always wins, so a network called `beef` stays reachable whatever IDs exist.
 * An ambiguous prefix is bad input (2) that lists the candidates; no match is undefined.
 */
export function resolveNetwork(state: State, ref: string): Network | undefined {
  const byName = state.networks.find((x) => x.name === ref);
  if (byName || !ID_PREFIX.test(ref)) return byName;
  const hits = state.networks.filter((x) => x.id.startsWith(ref));
  if (hits.length > 1) {
    const shown = hits.slice(0, 5).map((x) => `${x.name} (${x.id.slice(0, 12)})`).join(', ');
    throw invalid(
      `network ID prefix ${ref} is ambiguous: it matches ${shown}${hits.length > 5 ? `, and ${hits.length - 5} more` : ''}`,
      'give more digits of the ID, or the name',
    );
  }
  return hits[0];
}

export function findNetwork(state: State, ref: string): Network {
  const n = resolveNetwork(state, ref);
  if (!n) throw notFound(`network ${ref} not found`, 'list networks with: brnet network ls');
  return n;
}

export function findEndpoint(net: Network, name: string): Endpoint {
  const ep = net.endpoints.find((e) => e.name === name);
  if (!ep) throw notFound(`endpoint ${name} not found in network ${net.name}`, `list them with: brnet endpoint ls ${net.name}`);
  return ep;
}

export { modeOf };
/** A routed binding opens the container port on the endpoint's own address: no host port. */
export const isRouted = (n: Network, p: Pick<Port, 'hostIp'>) => modeOf(n, ipFamily(p.hostIp)) === 'routed';

/** A binding with its network and endpoint. */
export interface Binding {
  net: Network;
  ep: Endpoint;
  port: Port;
}

/**
 * Every binding of the state by a key that names it across states (network, endpoint,
 * protocol, host IP, host port, container port): what a change's steps are the difference of
 * (core/proxy-ports.ts, core/rootless-ports.ts).
 */
export function bindingsByKey(state: State): Map<string, Binding> {
  const out = new Map<string, Binding>();
  for (const net of state.networks) {
    for (const ep of net.endpoints) for (const port of ep.ports) out.set(`${net.name}/${ep.name}/${port.proto}/${port.hostIp}/${port.hostPort}/${port.containerPort}`, { net, ep, port });
  }
  return out;
}

export function listBindings(state: State, network?: string, endpoint?: string): { network: Network; endpoint: Endpoint; port: Port }[] {
  const nets = network === undefined ? state.networks : [findNetwork(state, network)];
  const out: { network: Network; endpoint: Endpoint; port: Port }[] = [];
  for (const n of nets) {
    const eps = endpoint === undefined ? n.endpoints : [findEndpoint(n, endpoint)];
    for (const e of eps) for (const p of e.ports) out.push({ network: n, endpoint: e, port: p });
  }
  return out;
}
