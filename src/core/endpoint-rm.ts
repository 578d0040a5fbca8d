// endpoint rm: firewall, conntrack, route hand-over, one tolerant ip -batch deleting veths
// and the namespaces brnet created. Its own module, so that removing loads none of what
// adding needs (address assignment and its IP library, the option parser).
import { notFound } from '../errors.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { endpointsRemoveSteps } from './endpoint-steps.ts';
import { findNetwork } from './lookup.ts';
import type { Step } from '../plan/steps.ts';
import type { Operation, Plan } from './runner.ts';

export interface Removed {
  removed: string[];
}

export function removeEndpoints(network: string, names: string[], opts: { ifExists?: boolean }): Operation<Removed> {
  return { what: `remove endpoint${names.length > 1 ? 's' : ''} ${names.map((n) => `${network}/${n}`).join(', ')}`, plan: async (state, host): Promise<Plan<Removed>> => {
    const none = { state: null, steps: [], result: { removed: [] } };
    const found = state.networks.find((x) => x.name === network);
    if (!found && opts.ifExists) return none;
    const n = found ?? findNetwork(state, network); // the usual not-found error
    const gone: Endpoint[] = [];
    for (const name of new Set(names)) {
      const ep = n.endpoints.find((e) => e.name === name);
      if (ep) gone.push(ep);
      else if (!opts.ifExists) throw notFound(`endpoint ${name} not found in network ${network}`, `list them with: brnet endpoint ls ${network}`);
    }
    if (!gone.length) return none;
    const nextNet: Network = { ...n, endpoints: n.endpoints.filter((e) => !gone.includes(e)) };
    const next: State = { ...state, networks: state.networks.map((x) => (x === n ? nextNet : x)) };
    // The firewall (reversible) first, the deletions (which cannot be undone) after it.
    const cleanups: Step[] = [];
    const withPorts = gone.filter((e) => e.ports.length);
    if (withPorts.length) {
      const { conntrackStep } = await import('../net/conntrack.ts');
      for (const ep of withPorts) cleanups.push(conntrackStep(n, ep, ep.ports));
    }
    const removal = endpointsRemoveSteps(gone.map((endpoint) => ({ network: n, endpoint })), null, next, host.netnsStatus);
    return { state: next, steps: removal.steps, afterFirewall: cleanups, atEnd: removal.atEnd, result: { removed: gone.map((e) => e.name) } };
  } };
}
