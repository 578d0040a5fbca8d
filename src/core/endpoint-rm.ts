// endpoint rm: firewall, conntrack, route hand-over, one tolerant ip -batch deleting veths
// and the namespaces brnet created. Its own module, so that removing loads none of what
// adding needs (address assignment and its IP library, the option parser).
import { notFound } from '../errors.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { type Ctx, requireRoot } from './context.ts';
import { endpointsRemoveSteps } from './endpoint-steps.ts';
import { findNetwork } from './lookup.ts';
import { firewallChange, mutate } from './operation.ts';
import type { Step } from '../plan/steps.ts';

export async function removeEndpoints(ctx: Ctx, network: string, names: string[], opts: { ifExists?: boolean }) {
  requireRoot(ctx);
  return mutate(ctx, async (state) => {
    const none = { state: null, steps: [] as Step[], result: { removed: [] as string[] } };
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
    // Reversible steps first, the deletions (which cannot be undone) last.
    const steps: Step[] = [];
    const fw = await firewallChange(state, next);
    if (fw) steps.push(fw);
    const withPorts = gone.filter((e) => e.ports.length);
    if (withPorts.length) {
      const { conntrackStep } = await import('../net/conntrack.ts');
      for (const ep of withPorts) steps.push(conntrackStep(n, ep, ep.ports));
    }
    steps.push(...endpointsRemoveSteps(gone.map((endpoint) => ({ network: n, endpoint })), null, next));
    return { state: next, steps, result: { removed: gone.map((e) => e.name) } };
  });
}
