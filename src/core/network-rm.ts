// network rm: its own module, so that removing loads none of what creating needs (IP math
// and its library, node:crypto, the option parser); the compiled executable still loads
// modules lazily, and loading costs are felt in every call.
import { anotherInstance, conflict, notFound } from '../errors.ts';
import { bridgeDownStep, ownsBridge } from '../net/bridge.ts';
import { isOwnMark, parseMark } from '../net/marks.ts';
import type { Network, State } from '../state/schema.ts';
import type { Step } from '../plan/steps.ts';
import type { Host } from './host.ts';
import { resolveNetwork } from './lookup.ts';
import type { Operation, Plan } from './runner.ts';

export interface Removed {
  removed: string[];
}

export function removeNetworks(names: string[], opts: { force?: boolean; ifExists?: boolean }): Operation<Removed> {
  return { what: `remove network${names.length > 1 ? 's' : ''} ${names.join(', ')}`, plan: async (state, live: Host): Promise<Plan<Removed>> => {
    const targets: Network[] = [];
    for (const ref of new Set(names)) {
      const n = resolveNetwork(state, ref);
      if (!n) {
        if (opts.ifExists) continue;
        throw notFound(`network ${ref} not found`);
      }
      if (targets.includes(n)) continue; // named twice, by name and by ID
      if (n.endpoints.length && !opts.force) {
        throw conflict(
          `network ${n.name} has ${n.endpoints.length} endpoint${n.endpoints.length > 1 ? 's' : ''}`,
          `remove them first, or use: brnet network rm --force ${n.name}`,
        );
      }
      refuseForeignBridge(n, live, state.instance, opts.force === true);
      targets.push(n);
    }
    if (!targets.length) return { state: null, steps: [], result: { removed: [] as string[] } };
    // Addresses matter only on adopted bridges (brnet removes its own from them); links come
    // from sysfs.
    const host = targets.every((n) => n.bridgeCreated) ? live.links() : await live.bridgeAddresses();
    const next: State = { ...state, networks: state.networks.filter((n) => !targets.includes(n)) };
    const bridges = targets.map((n) => bridgeDownStep(n, host, state.config, state.instance));
    const result = { removed: targets.map((n) => n.name) };
    if (targets.every((n) => !n.endpoints.length)) {
      // The usual case: the rules and the bridges go at the same time (both only wait on the
      // kernel); a bridge is undoable, by building it again.
      return { state: next, steps: bridges, firewall: 'with', result };
    }
    // With endpoints: the firewall first, then what cannot be undone (veths, namespaces).
    // Flows DNATed into the endpoints of a network that goes away are forgotten too.
    const { conntrackStep } = await import('../net/conntrack.ts');
    const cleanups: Step[] = [];
    for (const n of targets) for (const ep of n.endpoints) if (ep.ports.length) cleanups.push(conntrackStep(n, ep, ep.ports));
    // One batch deletes every endpoint of every network being removed.
    const { endpointsRemoveSteps } = await import('./endpoint-rm.ts');
    const gone = await endpointsRemoveSteps(
      targets.flatMap((network) => network.endpoints.map((endpoint) => ({ network, endpoint }))),
      live,
      next,
    );
    return { state: next, steps: [...gone.steps, ...bridges], afterFirewall: cleanups, atEnd: gone.atEnd, result };
  } };
}

/**
 * A device under the bridge's name that brnet cannot prove its own (another bridge made by
 * hand after brnet's went, a dummy, another instance's) is never deleted: refused, or with
 * --force the network is forgotten and the device left as it is.
 */
function refuseForeignBridge(n: Network, host: Host, instance: string | null, force: boolean): void {
  const link = n.bridgeCreated ? host.links().links.get(n.bridge) : undefined;
  if (!link || ownsBridge(n, link, instance)) return;
  const mark = parseMark(link.alias);
  if (mark?.instance && mark.instance !== instance) throw anotherInstance(mark.instance, [`bridge ${n.bridge} (${link.alias})`]);
  if (force) return;
  throw conflict(
    `device ${n.bridge} of network ${n.name} is not brnet's (${link.alias ? `its mark is ${link.alias}` : 'no brnet mark'}${isOwnMark(link.alias, instance, n.name) ? ', and its MAC is not the one brnet gave it' : ''}): not deleting it`,
    `forget the network and leave the device with: brnet network rm --force ${n.name}`,
  );
}
