// The firewall as a pure function of the state: renderRules(state) returns, per family and
// table, the complete content of every chain brnet owns. Applying it is then a matter of
// replacing chains (see iptables.ts), which makes apply idempotent, rollback exact, and
// `check`/`restore` a comparison with what the kernel reports.
//
// Layout (per family, mirroring the reference driver's v29 iptables layout with brnet names):
//   filter  FORWARD -> BRNET-FORWARD     dispatcher: conntrack accepts, internal drops,
//                                         "-o BR -> BRNET-IN-<id>", then ICC/outgoing rules
//                                         (with ICC off, legacy links just before its drop)
//           BRNET-IN-<id>                per network: published-port accepts, routed ICMP,
//                                         then the default drop (accept in nat-unprotected)
//   nat     PREROUTING/OUTPUT (dst LOCAL) -> BRNET-DNAT -> BRNET-DNAT-<id> (DNAT per port)
//           POSTROUTING -> BRNET-POSTROUTING -> BRNET-POST-<id> (masquerade/SNAT, hairpin)
//   raw     PREROUTING -> BRNET-RAW -> BRNET-RAW-<id> (direct-access and remote-loopback drops)
// Per-network chains keep an operation's change small: publishing a port rewrites only its
// own network's chains, however many other networks and ports exist.
import { type Endpoint, type GatewayMode, type Network, type Port, type State, modeOf } from '../state/schema.ts';

export type { Family } from '../net/addr-text.ts';
import { type Family, ipFamily } from '../net/addr-text.ts';
import { BRIDGE_GROUP_HEX, markPrefix } from '../net/marks.ts';
export type Table = 'raw' | 'filter' | 'nat';
export const TABLES: Table[] = ['raw', 'filter', 'nat'];

/** chain name -> rule specs (everything after `-A CHAIN`), in order. */
export type Chains = Map<string, string[]>;
export type TableSet = Record<Table, Chains>;
export interface Ruleset {
  4: TableSet;
  6: TableSet;
  /** Whose marks the rules carry (net/marks.ts); null renders the marks of before instances. */
  instance: string | null;
}

export interface Jump {
  table: Table;
  chain: string; // built-in chain
  spec: string; // rule spec without -A/-I CHAIN
}

export const DISPATCH = {
  forward: 'BRNET-FORWARD',
  dnat: 'BRNET-DNAT',
  post: 'BRNET-POSTROUTING',
  raw: 'BRNET-RAW',
} as const;

/** The rules brnet adds to built-in chains: the only places it touches outside its own chains. */
export function jumps(instance: string | null = null): Jump[] {
  const c = `-m comment --comment ${markPrefix(instance)}`;
  return [
    { table: 'filter', chain: 'FORWARD', spec: `${c} -j ${DISPATCH.forward}` },
    { table: 'nat', chain: 'PREROUTING', spec: `-m addrtype --dst-type LOCAL ${c} -j ${DISPATCH.dnat}` },
    { table: 'nat', chain: 'OUTPUT', spec: `-m addrtype --dst-type LOCAL ${c} -j ${DISPATCH.dnat}` },
    { table: 'nat', chain: 'POSTROUTING', spec: `${c} -j ${DISPATCH.post}` },
    { table: 'raw', chain: 'PREROUTING', spec: `${c} -j ${DISPATCH.raw}` },
  ];
}

/**
 * With the nftables backend, where iptables' own FORWARD chain drops by policy (Docker,
 * libvirt, an admin): an nftables accept is not final across tables, so brnet accepts its
 * bridges' traffic there too, by their device group (every bridge brnet makes is in
 * BRIDGE_GROUP), which keeps these two rules the same whatever networks exist. brnet's own
 * drops, in its nftables tables, are final: nothing they drop gets through.
 */
export function forwardAccepts(instance: string | null = null): Jump[] {
  const c = `-m comment --comment ${markPrefix(instance)}:forward-accept`;
  return [
    { table: 'filter', chain: 'FORWARD', spec: `-m devgroup --src-group ${BRIDGE_GROUP_HEX} ${c} -j ACCEPT` },
    { table: 'filter', chain: 'FORWARD', spec: `-m devgroup --dst-group ${BRIDGE_GROUP_HEX} ${c} -j ACCEPT` },
  ];
}

/**
 * brnet's chains, by exact name: a user chain that merely starts with BRNET (BRNETWATCH) is
 * not one of them.
 */
export const isOwnChain = (name: string): boolean =>
  /^BRNET-(FORWARD|DNAT|POSTROUTING|RAW)$/.test(name) || /^BRNET-(IN|DNAT|POST|RAW)-[0-9a-f]{12}$/.test(name);
/** The owner in the mark of the rules that exist only for the userland proxy. */
export const PROXY_OWNER = 'userland-proxy';
let tag = (owner: string) => `-m comment --comment brnet:${owner}`;
export const chainId = (n: Network) => n.id.slice(0, 12);
export const chainNames = (n: Network) => ({
  in: `BRNET-IN-${chainId(n)}`,
  dnat: `BRNET-DNAT-${chainId(n)}`,
  post: `BRNET-POST-${chainId(n)}`,
  raw: `BRNET-RAW-${chainId(n)}`,
});

const addr = (cidr: string | null) => (cidr ? (cidr.split('/')[0] ?? null) : null);
export const subnetOf = (n: Network, f: Family) => (f === 4 ? n.ipv4 : n.ipv6)?.subnet ?? null;
const epAddr = (e: Endpoint, f: Family) => addr(f === 4 ? e.ipv4 : e.ipv6);
export const isNatMode = (m: GatewayMode) => m === 'nat' || m === 'nat-unprotected';

function emptyTables(): TableSet {
  return { raw: new Map(), filter: new Map(), nat: new Map() };
}

/** Which families get rules at all, from the host-wide settings. */
export function enabledFamilies(state: State): Family[] {
  const out: Family[] = [];
  if (state.config.iptables) out.push(4);
  if (state.config.ip6tables) out.push(6);
  return out;
}

/**
 * All of brnet's chains for `state`. With `only`, the per-network chains of other networks are
 * left out (the dispatchers are always complete): comparing two such renders gives the change
 * for just those networks, at a cost that does not grow with the networks left alone.
 */
export function renderRules(state: State, only?: ReadonlySet<string>): Ruleset {
  const rs: Ruleset = { 4: emptyTables(), 6: emptyTables(), instance: state.instance };
  // Every rule names its instance and owner (network, or network:endpoint) in its comment.
  const prefix = markPrefix(state.instance);
  tag = (owner: string) => `-m comment --comment ${prefix}:${owner}`;
  for (const f of enabledFamilies(state)) renderFamily(state, f, rs[f], only);
  return rs;
}

function renderFamily(state: State, f: Family, t: TableSet, only?: ReadonlySet<string>): void {
  const nets = state.networks.filter((n) => subnetOf(n, f) !== null);
  if (nets.length === 0) return;
  const forward: string[] = [];
  const dnat: string[] = [];
  const post: string[] = [];
  const raw: string[] = [];
  t.filter.set(DISPATCH.forward, forward);
  t.nat.set(DISPATCH.dnat, dnat);
  t.nat.set(DISPATCH.post, post);
  t.raw.set(DISPATCH.raw, raw);
  const proxy = state.config.userlandProxy;
  // With the userland proxy the host's own connections to loopback are the proxy's (it
  // listens there): the reference driver leaves them out of its OUTPUT jump. brnet leaves
  // them out here instead, at the head of its DNAT dispatcher, so the jumps from built-in
  // chains stay the same in both modes and a migration rewrites only brnet's own chains.
  if (proxy) dnat.push(`-d ${f === 4 ? '127.0.0.0/8' : '::1/128'} ${tag(PROXY_OWNER)} -j RETURN`);

  // Dispatcher groups are emitted in this order across all networks, so that no network's
  // outgoing ACCEPT can pre-empt another network's ingress filtering or internal drops.
  for (const n of nets) {
    if (!n.internal) forward.push(`-o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED ${tag(n.name)} -j ACCEPT`);
  }
  for (const n of nets) {
    if (!n.internal) continue;
    forward.push(`! -i ${n.bridge} -o ${n.bridge} ${tag(n.name)} -j DROP`);
    forward.push(`-i ${n.bridge} ! -o ${n.bridge} ${tag(n.name)} -j DROP`);
  }
  for (const n of nets) {
    if (!n.internal) forward.push(`-o ${n.bridge} ${tag(n.name)} -j ${chainNames(n).in}`);
  }
  for (const n of nets) {
    if (n.icc) {
      forward.push(n.internal ? `-i ${n.bridge} -o ${n.bridge} ${tag(n.name)} -j ACCEPT` : `-i ${n.bridge} ${tag(n.name)} -j ACCEPT`);
    } else {
      forward.push(...linkRules(n, f));
      forward.push(`-i ${n.bridge} -o ${n.bridge} ${tag(n.name)} -j DROP`);
      if (!n.internal) forward.push(`-i ${n.bridge} ! -o ${n.bridge} ${tag(n.name)} -j ACCEPT`);
    }
  }

  for (const n of nets) {
    if (n.internal) continue;
    const names = chainNames(n);
    const mode = modeOf(n, f);
    const own = !only || only.has(n.name);
    if (own) t.filter.set(names.in, ingressRules(n, f, mode));
    if (isNatMode(mode)) {
      dnat.push(`${tag(n.name)} -j ${names.dnat}`);
      post.push(`${tag(n.name)} -j ${names.post}`);
      if (own) t.nat.set(names.dnat, dnatRules(n, f, proxy));
      if (own) t.nat.set(names.post, postRules(n, f, proxy));
    }
    raw.push(`${tag(n.name)} -j ${names.raw}`);
    if (own) t.raw.set(names.raw, rawRules(n, f, mode));
  }
}

/** Every published binding of the network in family f, with the endpoint's address. */
export function bindings(n: Network, f: Family): { ep: Endpoint; cip: string; port: Port }[] {
  const out: { ep: Endpoint; cip: string; port: Port }[] = [];
  for (const ep of n.endpoints) {
    const cip = epAddr(ep, f);
    if (!cip) continue;
    for (const port of ep.ports) if (ipFamily(port.hostIp) === f) out.push({ ep, cip, port });
  }
  return out;
}

/** A link in one family: both endpoints have an address in it. */
export interface LinkedPair {
  from: Endpoint;
  fromIp: string;
  toIp: string;
  proto: string;
  port: number;
}

/**
 * The links that take effect in family f: only where ICC is off (with ICC on, siblings reach
 * each other anyway, and a link is just recorded), and only between endpoints that both have
 * an address of the family.
 */
export function linkedPairs(n: Network, f: Family): LinkedPair[] {
  if (n.icc) return [];
  const out: LinkedPair[] = [];
  for (const from of n.endpoints) {
    const fromIp = epAddr(from, f);
    if (!fromIp) continue;
    for (const l of from.links) {
      const to = n.endpoints.find((e) => e.name === l.to);
      const toIp = to ? epAddr(to, f) : null;
      if (toIp) out.push({ from, fromIp, toIp, proto: l.proto, port: l.port });
    }
  }
  return out;
}

/**
 * IPv6 finds a neighbour with ICMPv6 (solicitations and advertisements, from link-local
 * addresses as often as not), which the ICC drop stops between siblings, where IPv4's ARP is
 * not IP and passes. A network with an IPv6 link lets them through: its siblings then see
 * each other's MAC addresses in IPv6 as they always do in IPv4, and nothing more.
 */
export const ND_TYPES = [
  { iptables: 135, nft: 'nd-neighbor-solicit' },
  { iptables: 136, nft: 'nd-neighbor-advert' },
] as const;

/**
 * Legacy links, just before the ICC drop they are exceptions to: FROM to TO on the port, and
 * back from it (the reference driver's pair of rules), owned by FROM, which holds the link;
 * in IPv6, neighbour discovery first (ND_TYPES), owned by the network. The way back takes
 * only replies: the reference's accepts anything from TO's port, with which TO could open
 * connections to FROM from that port. (Internal networks have no conntrack accept of their
 * own: replies need it there.)
 */
function linkRules(n: Network, f: Family): string[] {
  const br = n.bridge;
  const h = f === 4 ? 32 : 128;
  const pairs = linkedPairs(n, f);
  const nd = f === 6 && pairs.length ? ND_TYPES.map((t) => `-i ${br} -o ${br} -p ipv6-icmp -m icmp6 --icmpv6-type ${t.iptables} ${tag(n.name)} -j ACCEPT`) : [];
  return [
    ...nd,
    ...pairs.flatMap(({ from, fromIp, toIp, proto, port }) => [
      `-s ${fromIp}/${h} -d ${toIp}/${h} -i ${br} -o ${br} ${protoMatch(proto, '--dport', port)} ${tag(`${n.name}:${from.name}`)} -j ACCEPT`,
      `-s ${toIp}/${h} -d ${fromIp}/${h} -i ${br} -o ${br} ${protoMatch(proto, '--sport', port)} -m conntrack --ctstate ESTABLISHED ${tag(`${n.name}:${from.name}`)} -j ACCEPT`,
    ]),
  ];
}

const protoMatch = (p: string, flag: '--dport' | '--sport', port: number) => `-p ${p} -m ${p} ${flag} ${port}`;
const hostPart = (ip: string, f: Family) =>
  ip === '0.0.0.0' || ip === '::' ? '' : `-d ${ip}/${f === 4 ? 32 : 128} `;

function ingressRules(n: Network, f: Family, mode: GatewayMode): string[] {
  const br = n.bridge;
  const rules: string[] = [];
  if (mode !== 'nat-unprotected') {
    const seen = new Set<string>();
    for (const { ep, cip, port } of bindings(n, f)) {
      const r = `-d ${cip}/${f === 4 ? 32 : 128} ! -i ${br} -o ${br} ${protoMatch(port.proto, '--dport', port.containerPort)} ${tag(`${n.name}:${ep.name}`)} -j ACCEPT`;
      if (!seen.has(r)) rules.push(r); // a v4 binding on two host IPs needs one accept
      seen.add(r);
    }
  }
  if (mode === 'routed') {
    rules.push(`! -i ${br} -o ${br} -p ${f === 4 ? 'icmp' : 'ipv6-icmp'} ${tag(n.name)} -j ACCEPT`);
  }
  rules.push(`! -i ${br} -o ${br} ${tag(n.name)} -j ${mode === 'nat-unprotected' ? 'ACCEPT' : 'DROP'}`);
  return rules;
}

/**
 * With the proxy, traffic from the endpoint's own bridge is left to it (`! -i BR`): an
 * endpoint reaching its own published port then needs no hairpin NAT. SCTP has no proxy, and
 * keeps the rule of the mode without one.
 */
function dnatRules(n: Network, f: Family, proxy: boolean): string[] {
  const rules: string[] = [];
  for (const { ep, cip, port } of bindings(n, f)) {
    const ll = f === 6 ? '! -s fe80::/10 ' : '';
    const notOwn = proxy && port.proto !== 'sctp' ? `! -i ${n.bridge} ` : '';
    const to = f === 4 ? `${cip}:${port.containerPort}` : `[${cip}]:${port.containerPort}`;
    rules.push(
      `${ll}${hostPart(port.hostIp, f)}${notOwn}${protoMatch(port.proto, '--dport', port.hostPort)} ${tag(`${n.name}:${ep.name}`)} -j DNAT --to-destination ${to}`,
    );
  }
  return rules;
}

function postRules(n: Network, f: Family, proxy: boolean): string[] {
  const br = n.bridge;
  const rules: string[] = [];
  const sub = subnetOf(n, f);
  const snat = f === 4 ? n.snatIpv4 : n.snatIpv6;
  if (n.masquerade && sub) {
    rules.push(`-s ${sub} ! -o ${br} ${tag(n.name)} -j ${snat ? `SNAT --to-source ${snat}` : 'MASQUERADE'}`);
  }
  // Without a userland proxy the host's own connections to published ports (127.0.0.1
  // included, via route_localnet) are DNATed into the bridge; give them a bridge-local source.
  // With it, loopback is the proxy's, and so is an endpoint's own published port (hairpin),
  // except over SCTP, which the proxy does not carry.
  if (!proxy) rules.push(`-o ${br} -m addrtype --src-type LOCAL ${tag(n.name)} -j MASQUERADE`);
  const seen = new Set<string>();
  for (const { ep, cip, port } of bindings(n, f)) {
    if (proxy && port.proto !== 'sctp') continue;
    const h = f === 4 ? 32 : 128;
    const r = `-s ${cip}/${h} -d ${cip}/${h} ${protoMatch(port.proto, '--dport', port.containerPort)} ${tag(`${n.name}:${ep.name}`)} -j MASQUERADE`;
    if (!seen.has(r)) rules.push(r);
    seen.add(r);
  }
  return rules;
}

/**
 * raw PREROUTING, before any NAT: packets routed straight to the network's addresses from
 * anywhere but its own bridge are dropped in nat mode (only published host ports lead in),
 * and ports published on 127.0.0.1 are not reachable from other hosts.
 * The reference driver writes one drop per endpoint; brnet writes one per network, for the
 * whole subnet minus the gateway (the host's own address, which stays reachable), to the same
 * effect for every endpoint address. The raw table then changes with networks only, so adding
 * or removing an endpoint commits one table fewer (each nf_tables commit has a fixed cost).
 */
function rawRules(n: Network, f: Family, mode: GatewayMode): string[] {
  const rules: string[] = [];
  const fc = f === 4 ? n.ipv4 : n.ipv6;
  if (mode === 'nat' && fc) {
    for (const t of n.trustedInterfaces) rules.push(`-d ${fc.subnet} -i ${t} ${tag(n.name)} -j ACCEPT`);
    if (fc.gateway) rules.push(`-d ${fc.gateway}/${f === 4 ? 32 : 128} ${tag(n.name)} -j RETURN`);
    rules.push(`-d ${fc.subnet} ! -i ${n.bridge} ${tag(n.name)} -j DROP`);
  }
  if (f === 4) {
    for (const { ep, port } of bindings(n, f)) {
      if (!port.hostIp.startsWith('127.')) continue;
      rules.push(
        `-d ${port.hostIp}/32 ! -i lo ${protoMatch(port.proto, '--dport', port.hostPort)} ${tag(`${n.name}:${ep.name}`)} -j DROP`,
      );
    }
  }
  return rules;
}
