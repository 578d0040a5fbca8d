// Finding objects in the state, with the not-found errors every command shares.
import { notFound } from '../errors.ts';
import { ipFamily } from '../net/addr-text.ts';
import { type Endpoint, type Network, type Port, type State, modeOf } from '../state/schema.ts';

export function findNetwork(state: State, name: string): Network {
  const n = state.networks.find((x) => x.name === name);
  if (!n) throw notFound(`network ${name} not found`, 'list networks with: brnet network ls');
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

export function listBindings(state: State, network?: string, endpoint?: string): { network: Network; endpoint: Endpoint; port: Port }[] {
  const nets = network === undefined ? state.networks : [findNetwork(state, network)];
  const out: { network: Network; endpoint: Endpoint; port: Port }[] = [];
  for (const n of nets) {
    const eps = endpoint === undefined ? n.endpoints : [findEndpoint(n, endpoint)];
    for (const e of eps) for (const p of e.ports) out.push({ network: n, endpoint: e, port: p });
  }
  return out;
}
