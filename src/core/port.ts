// port publish / unpublish: from SPECs and the current state to bindings (port-bindings.ts),
// and from the bindings to a plan. A binding is a Port entry of an endpoint in the state; the firewall
// rules for it (DNAT, filter accept, hairpin masquerade, loopback drop) follow from the state
// through renderRules, so publishing is "add Port entries, replace the changed chains, forget
// the affected conntrack flows".
//
// `endpoint add -p SPEC` uses parsePortSpec, allocateBindings and conntrackStep from here.
import { conntrackStep } from '../net/conntrack.ts';
import { type PortRequest, ipFamily, parsePortSpec, prefetchListeners } from '../net/ports.ts';
import type { Endpoint, Network, Port, State } from '../state/schema.ts';
import { formatIp, parseIp } from '../net/ipam.ts';
import type { Host } from './host.ts';
import { allocateBindings, matchBindings } from './port-bindings.ts';
import { findEndpoint, findNetwork, modeOf } from './lookup.ts';
import type { Operation, Plan } from './runner.ts';

export type { PortRequest } from '../net/ports.ts';
export { allocateBindings, conntrackStep, parsePortSpec, prefetchListeners };


/** Notes for the user when a routed network ignores the host part of a SPEC. */
function routedNotes(net: Network, ep: Endpoint, requests: readonly PortRequest[]): string[] {
  const notes = new Set<string>();
  for (const r of requests) {
    if (r.hostIp === null && r.hostPort === null) continue;
    for (const f of [4, 6] as const) {
      const has = f === 4 ? ep.ipv4 : ep.ipv6;
      if (!has || modeOf(net, f) !== 'routed' || (r.hostIp !== null && ipFamily(r.hostIp) !== f)) continue;
      notes.add(`network ${net.name} is routed for IPv${f}: the host IP and port of "${r.spec}" are ignored there, the container port is opened instead`);
    }
  }
  return [...notes];
}

/**
 * A binding on an address the host does not have is kept (an address may come later: a VRRP
 * address, an interface brought up after brnet), but it receives nothing until then: said.
 */
export function foreignHostIpWarnings(ports: readonly Port[], host: Pick<Host, 'prefixes'>): string[] {
  const specific = [...new Set(ports.map((p) => p.hostIp))].filter((ip) => ip !== '0.0.0.0' && ip !== '::' && ip !== '::1' && !ip.startsWith('127.'));
  if (!specific.length) return [];
  const canon = (ip: string) => {
    const parsed = parseIp(ip);
    return parsed ? formatIp(parsed) : ip;
  };
  const have = new Set(host.prefixes(specific.some((ip) => ip.includes(':'))).addrs.map((a) => canon(a.local)));
  return specific
    .filter((ip) => !have.has(canon(ip)))
    .map((ip) => `host IP ${ip} is not an address of this host: its published ports receive nothing until the host has it`);
}

function withPorts(state: State, net: Network, ep: Endpoint, ports: Port[]): { next: State; ep: Endpoint } {
  const epNext: Endpoint = { ...ep, ports };
  const netNext: Network = { ...net, endpoints: net.endpoints.map((e) => (e === ep ? epNext : e)) };
  return { next: { ...state, networks: state.networks.map((n) => (n === net ? netNext : n)) }, ep: epNext };
}


export interface PortsResult {
  network: Network;
  endpoint: Endpoint;
  /** The bindings published (or unpublished) by this call. */
  ports: Port[];
}

export function publishPorts(network: string, endpoint: string, specs: string[]): Operation<PortsResult> {
  const requests = specs.flatMap(parsePortSpec); // bad SPECs fail here, before the lock
  const listening = prefetchListeners();
  return { what: `publish ports on ${network}/${endpoint}`, plan: async (state, host): Promise<Plan<PortsResult>> => {
    const net = findNetwork(state, network);
    const ep = findEndpoint(net, endpoint);
    await listening;
    const ports = await allocateBindings(state, net, ep, requests, host);
    const { next, ep: epNext } = withPorts(state, net, ep, [...ep.ports, ...ports]);
    // The flows go after the rules change: those re-created by the next packet meet the new rules.
    return {
      state: next,
      steps: [],
      afterFirewall: [conntrackStep(net, ep, ports)],
      notes: routedNotes(net, ep, requests),
      warnings: foreignHostIpWarnings(ports, host),
      result: { network: net, endpoint: epNext, ports },
    };
  } };
}

export function unpublishPorts(network: string, endpoint: string, specs: string[]): Operation<PortsResult> {
  const requests = specs.flatMap(parsePortSpec);
  return { what: `unpublish ports of ${network}/${endpoint}`, plan: async (state): Promise<Plan<PortsResult>> => {
    const net = findNetwork(state, network);
    const ep = findEndpoint(net, endpoint);
    const gone = requests.length ? matchBindings(net, ep, requests) : ep.ports;
    if (!gone.length) return { state: null, steps: [], result: { network: net, endpoint: ep, ports: [] } };
    const { next, ep: epNext } = withPorts(state, net, ep, ep.ports.filter((p) => !gone.includes(p)));
    return { state: next, steps: [], afterFirewall: [conntrackStep(net, ep, gone)], result: { network: net, endpoint: epNext, ports: gone } };
  } };
}

/** Every binding, or those of one network, or of one endpoint; unknown names are not found. */
