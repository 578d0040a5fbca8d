// endpoint link / unlink: Docker's legacy links. On a network with ICC off, a link lets one
// endpoint (FROM, which holds it in the state) open connections to another (TO) on one port
// and protocol, and nothing else. A link is only a state entry: the rules for it (an accept
// each way just before the ICC drop, firewall/rules.ts linkRules) follow from the state
// through the renderers, so `check`, `restore`, `--dry-run`, batches and rollback treat links
// as they treat ports.
// ICC is fixed when a network is created: on an ICC-on network a link is recorded and
// changes nothing (its endpoints reach each other anyway), as the contract says.
import { invalid, notFound } from '../errors.ts';
import type { FlowFilter } from '../net/conntrack.ts';
import { type Endpoint, type Link, type Network, Proto, type State } from '../state/schema.ts';
import { findEndpoint, findNetwork } from './lookup.ts';
import type { Operation, Plan } from './runner.ts';

/** A port of a link as given: PORT or PORT/PROTO (tcp by default, as in port specs). */
export interface LinkPort {
  proto: Link['proto'];
  port: number;
}

export function parseLinkPort(spec: string): LinkPort {
  const m = /^(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(spec);
  const proto = (m?.[2] ?? 'tcp').toLowerCase();
  const port = Number(m?.[1]);
  if (!m || port < 1 || port > 65535) throw invalid(`invalid port "${spec}": expected PORT[/PROTO] with PORT from 1 to 65535`, 'for example: 80, 53/udp');
  if (!(Proto.options as readonly string[]).includes(proto)) throw invalid(`invalid port "${spec}": unknown protocol "${m[2]}"`, `use ${Proto.options.join(', ')}`);
  return { proto: proto as LinkPort['proto'], port };
}

const key = (to: string, p: LinkPort) => `${to} ${p.port}/${p.proto}`;

/** Each port once, in the order given. */
function parsePorts(specs: readonly string[]): LinkPort[] {
  const out = new Map<string, LinkPort>();
  for (const s of specs) {
    const p = parseLinkPort(s);
    out.set(key('', p), p);
  }
  return [...out.values()];
}

export interface LinksResult {
  network: Network;
  /** FROM, as it is after the call. */
  endpoint: Endpoint;
  /** TO's name. */
  to: string;
  /** The links added (or removed) by this call. */
  links: Link[];
}

function withLinks(state: State, net: Network, ep: Endpoint, links: Link[]): { next: State; ep: Endpoint } {
  const epNext: Endpoint = { ...ep, links };
  const netNext: Network = { ...net, endpoints: net.endpoints.map((e) => (e === ep ? epNext : e)) };
  return { next: { ...state, networks: state.networks.map((n) => (n === net ? netNext : n)) }, ep: epNext };
}

function endpoints(state: State, network: string, from: string, to: string): { net: Network; a: Endpoint; b: Endpoint } {
  const net = findNetwork(state, network);
  return { net, a: findEndpoint(net, from), b: findEndpoint(net, to) };
}

const selfLink = (from: string, to: string) => {
  if (from === to) throw invalid(`endpoint ${from} cannot be linked to itself`);
};

export function linkEndpoints(network: string, from: string, to: string, specs: string[]): Operation<LinksResult> {
  selfLink(from, to);
  const ports = parsePorts(specs); // bad ports fail here, before the lock
  return { what: `link ${network}/${from} to ${to}`, plan: async (state): Promise<Plan<LinksResult>> => {
    const { net, a, b } = endpoints(state, network, from, to);
    const have = new Set(a.links.map((l) => key(l.to, l)));
    const added: Link[] = ports.filter((p) => !have.has(key(b.name, p))).map((p) => ({ to: b.name, proto: p.proto, port: p.port }));
    const notes = net.icc ? [`network ${net.name} has ICC on: its endpoints reach each other anyway, and the link is only recorded`] : [];
    if (!added.length) return { state: null, steps: [], notes, result: { network: net, endpoint: a, to: b.name, links: [] } };
    const { next, ep } = withLinks(state, net, a, [...a.links, ...added]);
    return { state: next, steps: [], notes, result: { network: net, endpoint: ep, to: b.name, links: added } };
  } };
}

export function unlinkEndpoints(network: string, from: string, to: string, specs: string[]): Operation<LinksResult> {
  selfLink(from, to);
  const ports = parsePorts(specs);
  return { what: `unlink ${network}/${from} from ${to}`, plan: async (state): Promise<Plan<LinksResult>> => {
    const { net, a, b } = endpoints(state, network, from, to);
    const toB = a.links.filter((l) => l.to === b.name);
    for (const p of ports) {
      if (!toB.some((l) => key(l.to, l) === key(b.name, p))) {
        throw notFound(`endpoint ${net.name}/${a.name} has no link to ${b.name} on ${p.port}/${p.proto}`, `see them with: brnet endpoint inspect ${net.name} ${a.name}`);
      }
    }
    const wanted = new Set(ports.map((p) => key(b.name, p)));
    const gone = ports.length ? toB.filter((l) => wanted.has(key(l.to, l))) : toB;
    if (!gone.length) return { state: null, steps: [], result: { network: net, endpoint: a, to: b.name, links: [] } };
    const { next, ep } = withLinks(state, net, a, a.links.filter((l) => !gone.includes(l)));
    // Connections the link let through are forgotten after the rules go, so they stop too.
    const afterFirewall = net.icc ? [] : [(await import('../net/conntrack.ts')).flowsStep(linkFlows(a, b, gone))];
    return { state: next, steps: [], afterFirewall, result: { network: net, endpoint: ep, to: b.name, links: gone } };
  } };
}

/** The conntrack filters of the flows `links` of FROM to TO let through, in each family. */
export function linkFlows(from: Endpoint, to: Endpoint, links: readonly Link[]): FlowFilter[] {
  const addr = (cidr: string | null) => cidr?.split('/')[0] ?? null;
  const out: FlowFilter[] = [];
  for (const [family, src, dst] of [
    [4, addr(from.ipv4), addr(to.ipv4)],
    [6, addr(from.ipv6), addr(to.ipv6)],
  ] as const) {
    if (!src || !dst) continue;
    for (const l of links) {
      out.push({ proto: l.proto, dport: l.port, dst, family, line: `-D -p ${l.proto} --orig-src ${src} --orig-dst ${dst} --orig-port-dst ${l.port}` });
    }
  }
  return out;
}

/** The endpoints that stay when `gone` leave the network, without their links to those. */
export function withoutLinksTo(stay: Endpoint[], gone: readonly Endpoint[]): Endpoint[] {
  const names = new Set(gone.map((e) => e.name));
  return stay.map((e) => (e.links.some((l) => names.has(l.to)) ? { ...e, links: e.links.filter((l) => !names.has(l.to)) } : e));
}
