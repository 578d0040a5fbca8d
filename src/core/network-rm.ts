// network rm: its own module, so that removing loads none of what creating needs (IP math
// and its library, node:crypto, the option parser): ~6 ms of loading per call.
import { conflict, notFound } from '../errors.ts';
import { bridgeDownStep } from '../net/bridge.ts';
import { linksView, readBridgeAddresses } from '../net/host.ts';
import type { Network, State } from '../state/schema.ts';
import { type Ctx, requireRoot } from './context.ts';
import { firewallChange, mutate } from './operation.ts';
import { type Step, concurrently } from '../plan/steps.ts';

export async function removeNetworks(ctx: Ctx, names: string[], opts: { force?: boolean; ifExists?: boolean }) {
  requireRoot(ctx);
  return mutate(ctx, async (state) => {
    const targets: Network[] = [];
    for (const name of new Set(names)) {
      const n = state.networks.find((x) => x.name === name);
      if (!n) {
        if (opts.ifExists) continue;
        throw notFound(`network ${name} not found`);
      }
      if (n.endpoints.length && !opts.force) {
        throw conflict(
          `network ${name} has ${n.endpoints.length} endpoint${n.endpoints.length > 1 ? 's' : ''}`,
          `remove them first, or use: brnet network rm --force ${name}`,
        );
      }
      targets.push(n);
    }
    if (!targets.length) return { state: null, steps: [], result: { removed: [] as string[] } };
    // Addresses matter only on adopted bridges (brnet removes its own from them); links come
    // from sysfs.
    const host = targets.every((n) => n.bridgeCreated) ? linksView() : await readBridgeAddresses();
    const next: State = { ...state, networks: state.networks.filter((n) => !targets.includes(n)) };
    const fw = await firewallChange(state, next);
    const bridges = targets.map((n) => bridgeDownStep(n, host, state.config));
    const result = { removed: targets.map((n) => n.name) };
    if (targets.every((n) => !n.endpoints.length)) {
      // The usual case: the rules and the bridges go at the same time (both wait on the kernel,
      // ~40 ms each); a bridge is undoable, by building it again.
      return { state: next, steps: [concurrently(fw ? [fw, ...bridges] : bridges)], result };
    }
    // With endpoints: the firewall first, then what cannot be undone (veths, namespaces).
    const steps: Step[] = fw ? [fw] : [];
    // Flows DNATed into the endpoints of a network that goes away are forgotten too.
    const { conntrackStep } = await import('../net/conntrack.ts');
    for (const n of targets) for (const ep of n.endpoints) if (ep.ports.length) steps.push(conntrackStep(n, ep, ep.ports));
    // One batch deletes every endpoint of every network being removed.
    const { endpointsRemoveSteps } = await import('./endpoint-steps.ts');
    steps.push(...endpointsRemoveSteps(targets.flatMap((network) => network.endpoints.map((endpoint) => ({ network, endpoint }))), host, next));
    steps.push(...bridges);
    return { state: next, steps, result };
  });
}
