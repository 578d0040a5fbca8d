// `brnet explain --from SRC --to DST[:PORT][/PROTO]`: what brnet's rules do to one packet,
// without sending one. The path is the kernel's: a packet from an endpoint or from outside
// meets raw PREROUTING, nat PREROUTING (DNAT for host addresses), the routing decision (asked
// of the kernel: `ip route get … iif …`), filter FORWARD and nat POSTROUTING; a packet of the
// host meets nat OUTPUT, routing and nat POSTROUTING (brnet filters no INPUT or OUTPUT). At
// each hook the rules are brnet's own model (firewall/rules.ts, evaluated by
// firewall/evaluate.ts), the same for both backends; what the host adds is read live:
// addresses, routes, br_netfilter, iptables' FORWARD policy and rules that are not brnet's.
import { invalid } from '../errors.ts';
import { type Hit, type Outcome, type Packet, UnknownRule, splitHostPort, walk } from '../firewall/evaluate.ts';
import { DISPATCH, type Family, type Table, renderRules, subnetOf } from '../firewall/rules.ts';
import { type ForwardChain, isBrnetRule, readForward } from '../firewall/survey.ts';
import { type Ip, contains, formatIp, parseCidr, parseIp } from '../net/ipam.ts';
import { run } from '../net/exec.ts';
import { BRIDGE_GROUP } from '../net/marks.ts';
import { readSysctl } from '../net/sysctl.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { findEndpoint, findNetwork } from './lookup.ts';

export type Verdict = 'allowed' | 'blocked' | 'unknown';

export interface Explained {
  verdict: Verdict;
  /** Why, in a few words: the deciding rule's effect, a policy, a route. */
  reason: string;
  from: string;
  to: string;
  proto: string;
  port: number | null;
  /** The addresses the packet has at each end, after translation. */
  path: { src: string; dst: string; dport: number | null; iif: string | null; oif: string | null };
  /** Where an allowed packet ends up: the host itself, an endpoint ("web/app"), or an address beyond oif. */
  reaches: string | null;
  nat: { type: 'dnat' | 'masquerade' | 'snat'; to: string | null; table: Table; chain: string; rule: string; owner: string | null }[];
  rules: { table: Table; chain: string; rule: string; owner: string | null }[];
}

type Side = { kind: 'host' } | { kind: 'endpoint'; network: Network; endpoint: Endpoint } | { kind: 'ip'; ip: Ip };

export interface Query {
  from: string;
  to: string;
  fromSide: { kind: 'host' } | { kind: 'endpoint'; network: string; endpoint: string } | { kind: 'ip'; ip: Ip };
  toSide: { kind: 'endpoint'; network: string; endpoint: string } | { kind: 'ip'; ip: Ip };
  proto: string;
  port: number | null;
}

const PROTOS = ['tcp', 'udp', 'sctp', 'icmp'];

function parseSide(text: string, what: string): { kind: 'endpoint'; network: string; endpoint: string } | { kind: 'ip'; ip: Ip } {
  const ep = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/.exec(text);
  if (ep) return { kind: 'endpoint', network: ep[1] as string, endpoint: ep[2] as string };
  const ip = parseIp(text);
  if (!ip) throw invalid(`invalid ${what} ${JSON.stringify(text)}: not NETWORK/ENDPOINT or an IP address`);
  return { kind: 'ip', ip };
}

/** SRC and DST as typed; bad ones fail here (2), before anything is read. */
export function parseQuery(from: string, to: string): Query {
  if (!from) throw invalid('--from is required: NETWORK/ENDPOINT, host or an IP address');
  if (!to) throw invalid('--to is required: NETWORK/ENDPOINT or an IP address, with :PORT and /PROTO');
  const fromSide = from === 'host' ? ({ kind: 'host' } as const) : parseSide(from, '--from');
  let rest = to;
  let proto: string | null = null;
  const slash = /\/(tcp|udp|sctp|icmp)$/i.exec(rest);
  if (slash) {
    proto = (slash[1] as string).toLowerCase();
    rest = rest.slice(0, -slash[0].length);
  } else if (/\/[a-z]+$/i.test(rest) && !/^[^/]+\/[^/]+$/.test(rest.replace(/:\d+$/, ''))) {
    throw invalid(`invalid protocol in --to ${JSON.stringify(to)}: one of ${PROTOS.join(', ')}`);
  }
  let port: number | null = null;
  let host = rest;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracket) {
    host = bracket[1] as string;
    port = bracket[2] ? Number(bracket[2]) : null;
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    const [h = '', p = ''] = rest.split(':');
    if (!/^\d{1,5}$/.test(p)) throw invalid(`invalid port in --to ${JSON.stringify(to)}`);
    host = h;
    port = Number(p);
  }
  if (port !== null && (port < 1 || port > 65535)) throw invalid(`invalid port ${port} in --to: 1-65535`);
  proto ??= port === null ? 'icmp' : 'tcp';
  if (proto === 'icmp' && port !== null) throw invalid('icmp has no ports: give --to DST without :PORT');
  if (proto !== 'icmp' && port === null) throw invalid(`${proto} needs a port: --to DST:PORT/${proto}`);
  const toSide = parseSide(host, '--to');
  return { from, to: host, fromSide, toSide, proto, port };
}

function resolve(state: State, s: Query['fromSide'] | Query['toSide']): Side {
  if (s.kind !== 'endpoint') return s;
  const network = findNetwork(state, s.network);
  return { kind: 'endpoint', network, endpoint: findEndpoint(network, s.endpoint) };
}

const epIp = (ep: Endpoint, f: Family): Ip | null => {
  const a = f === 4 ? ep.ipv4 : ep.ipv6;
  return a ? parseIp(a.split('/')[0] as string) : null;
};

/** The family of the packet: the one both ends have (IPv4 first). */
function familyOf(a: Side, b: Side): Family {
  const fams = (s: Side): Family[] => (s.kind === 'host' ? [4, 6] : s.kind === 'ip' ? [s.ip.family] : ([4, 6] as Family[]).filter((f) => epIp(s.endpoint, f)));
  const both = fams(a).filter((f) => fams(b).includes(f));
  if (!both.length) throw invalid('--from and --to have no address family in common');
  return both[0] as Family;
}

interface RouteAnswer {
  type: 'local' | 'unicast';
  dev: string | null;
  /** The source address the host would give its own packet. */
  prefsrc: string | null;
  error: string | null;
}

/** The kernel's routing decision (`ip route get`), as it would take it for this packet. */
async function routeGet(dst: Ip, from: Ip | null, iif: string | null): Promise<RouteAnswer> {
  const argv = ['ip', '-j', `-${dst.family}`, 'route', 'get', formatIp(dst)];
  if (from && iif) argv.push('from', formatIp(from), 'iif', iif);
  const r = await run(argv, { allowFail: true });
  if (r.code !== 0) return { type: 'unicast', dev: null, prefsrc: null, error: r.stderr.trim().replace(/^RTNETLINK answers: /, '') || `exit ${r.code}` };
  try {
    const [x] = JSON.parse(r.stdout) as { type?: string; dev?: string; prefsrc?: string }[];
    return { type: x?.type === 'local' ? 'local' : 'unicast', dev: x?.dev ?? null, prefsrc: x?.prefsrc ?? null, error: null };
  } catch {
    return { type: 'unicast', dev: null, prefsrc: null, error: 'unreadable answer from ip route get' };
  }
}

/** The binding whose proxy listens on ip:port (`NETWORK/ENDPOINT`), if any. */
function proxyServing(state: State, proto: string, ip: Ip, port: number): string | null {
  for (const n of state.networks) {
    for (const e of n.endpoints) {
      for (const p of e.ports) {
        if (!p.proxy || p.proto !== proto || p.hostPort !== port) continue;
        if (p.hostIp === '0.0.0.0' || p.hostIp === '::' ? (p.hostIp === '::' ? 6 : 4) === ip.family : parseIp(p.hostIp)?.value === ip.value) return `${n.name}/${e.name}`;
      }
    }
  }
  return null;
}

export async function explain(state: State, q: Query): Promise<Explained> {
  const from = resolve(state, q.fromSide);
  const to = resolve(state, q.toSide);
  const f = familyOf(from, to);
  const dst0 = to.kind === 'endpoint' ? (epIp(to.endpoint, f) as Ip) : (to as { ip: Ip }).ip;
  // The rules as brnet renders them for the state, for either backend (a family turned off has none).
  const rules = renderRules(state)[f];
  const bridges = new Map(state.networks.map((n) => [n.bridge, n]));
  const groupOf = (dev: string | null) => (dev && bridges.get(dev)?.bridgeCreated ? BRIDGE_GROUP : null);
  const base = { from: q.from, to: q.to, proto: q.proto, port: q.port };
  const endpointAt = (ip: Ip): string | null => {
    for (const n of state.networks) for (const e of n.endpoints) if (epIp(e, f)?.value === ip.value) return `${n.name}/${e.name}`;
    return null;
  };
  const hits: Hit[] = [];
  const nat: Explained['nat'] = [];
  const out = (verdict: Verdict, reason: string, p: Packet): Explained => ({
    verdict,
    reason,
    ...base,
    path: { src: formatIp(p.src), dst: formatIp(p.dst), dport: p.dport, iif: p.iif, oif: p.oif },
    reaches: verdict !== 'allowed' ? null : p.oif === null ? 'host' : (endpointAt(p.dst) ?? formatIp(p.dst)),
    nat,
    rules: hits.map(({ table, chain, rule, owner }) => ({ table, chain, rule, owner })),
  });

  // Where the packet comes from: the host itself, an endpoint's bridge, or the device the host
  // reaches SRC through.
  let srcIp: Ip | null = from.kind === 'endpoint' ? epIp(from.endpoint, f) : from.kind === 'ip' ? (from as { ip: Ip }).ip : null;
  let iif: string | null = from.kind === 'endpoint' ? from.network.bridge : null;
  const [srcRoute, dstLocalRoute] = await Promise.all([
    from.kind === 'ip' ? routeGet((from as { ip: Ip }).ip, null, null) : Promise.resolve(null),
    routeGet(dst0, null, null),
  ]);
  let local = from.kind === 'host';
  if (srcRoute) {
    if (srcRoute.type === 'local') local = true;
    else iif = srcRoute.dev;
  }
  // The host's own packet gets the route's source address (it matters only to NAT).
  if (local) srcIp = srcIp ?? parseIp(dstLocalRoute.prefsrc ?? '') ?? (dstLocalRoute.type === 'local' ? dst0 : null) ?? parseIp(f === 4 ? '127.0.0.1' : '::1');
  const p: Packet = {
    src: srcIp as Ip,
    dst: dst0,
    proto: q.proto,
    dport: q.port,
    iif: local ? null : iif,
    oif: null,
    srcLocal: local,
    dstLocal: dstLocalRoute.type === 'local',
    iifGroup: local ? null : groupOf(iif),
    oifGroup: null,
  };
  try {
    return await path(p);
  } catch (e) {
    if (e instanceof UnknownRule) return out('unknown', e.message, p);
    throw e;
  }

  async function path(pk: Packet): Promise<Explained> {
    const nowhere = (r: RouteAnswer) => out('blocked', `no route: ${r.error}`, pk);
    if (!pk.srcLocal) {
      // raw PREROUTING: direct access to the networks' addresses, remote access to loopback ports.
      const raw = walk(rules, 'raw', DISPATCH.raw, pk, hits);
      if (raw.kind === 'drop') return out('blocked', 'dropped in raw PREROUTING', pk);
    }
    // nat PREROUTING or OUTPUT: published ports of the host's addresses.
    if (pk.dstLocal) translate(walk(rules, 'nat', DISPATCH.dnat, pk, hits), 'nat', pk);
    // Within an endpoint's own subnet the packet is switched by the bridge, not routed.
    const own = from.kind === 'endpoint' ? subnetOf(from.network, f) : null;
    const switched = !pk.srcLocal && own !== null && !nat.some((x) => x.type === 'dnat') && contains(parseCidr(own), pk.dst) && !pk.dstLocal;
    const route = switched ? { type: 'unicast' as const, dev: pk.iif, prefsrc: null, error: null } : await routeGet(pk.dst, pk.srcLocal ? null : pk.src, pk.srcLocal ? null : pk.iif);
    if (route.error) return nowhere(route);
    if (route.type === 'local') {
      const proxy = q.port === null ? null : proxyServing(state, q.proto, pk.dst, q.port);
      const via = proxy ? `, where the userland proxy of ${proxy} forwards it` : '';
      return out('allowed', pk.srcLocal ? `to the host itself${via}` : `to the host itself${via || ' (brnet filters no INPUT)'}`, pk);
    }
    pk.oif = route.dev;
    pk.oifGroup = groupOf(pk.oif);
    if (!pk.srcLocal) {
      const bridged = pk.iif === pk.oif && !nat.some((x) => x.type === 'dnat');
      if (bridged && bridges.has(pk.iif ?? '') && readSysctl(`net/bridge/bridge-nf-call-${f === 4 ? 'iptables' : 'ip6tables'}`) !== '1') {
        return out('allowed', 'switched within the bridge, unfiltered: br_netfilter is off', pk);
      }
      const verdict = await forward(pk);
      if (verdict) return verdict;
    }
    // nat POSTROUTING: masquerade or SNAT on the way out.
    translate(walk(rules, 'nat', DISPATCH.post, pk, hits), 'nat', pk);
    const reply = replyDropped(pk);
    if (reply) return out('blocked', reply, pk);
    return out('allowed', pk.srcLocal ? 'from the host (brnet filters no OUTPUT)' : 'accepted in FORWARD', pk);
  }

  /**
   * The answer's way back, where only the stateless raw table can stop it: a reply to an
   * endpoint address that was not masqueraded comes in from outside its bridge, where brnet
   * drops direct access to the network (as the reference driver does).
   */
  function replyDropped(pk: Packet): string | null {
    if (pk.srcLocal || pk.oif === null || nat.some((x) => x.type !== 'dnat')) return null;
    const back: Packet = { ...pk, src: pk.dst, dst: pk.src, iif: pk.oif, oif: pk.iif, iifGroup: pk.oifGroup, oifGroup: pk.iifGroup, srcLocal: false, dstLocal: false, established: true };
    const seen: Hit[] = [];
    if (walk(rules, 'raw', DISPATCH.raw, back, seen).kind !== 'drop') return null;
    const last = seen.at(-1) as Hit;
    hits.push(last);
    return `the reply (not masqueraded) is dropped in raw PREROUTING: ${last.table}/${last.chain}`;
  }

  /** filter FORWARD: brnet's chains, then what the host's FORWARD chain adds; null: accepted. */
  async function forward(pk: Packet): Promise<Explained | null> {
    const fw = await readForward(f).catch(() => null);
    const chain: ForwardChain = fw ?? { policy: 'ACCEPT', rules: [] };
    const nft = state.config.firewallBackend === 'nftables';
    const jumpAt = chain.rules.findIndex((r) => r.includes(`-j ${DISPATCH.forward}`) && isBrnetRule(r));
    // Rules of others that the packet meets before brnet's decide first (iptables), or as
    // well (nftables, where both tables are passed): what they do is not brnet's to tell.
    const foreign = chain.rules.filter((r, i) => !isBrnetRule(r) && (nft || jumpAt < 0 || i < jumpAt));
    if (foreign.length) return out('unknown', `a rule that is not brnet's in filter/FORWARD comes first: -A FORWARD ${foreign[0]}`, pk);
    const r = walk(rules, 'filter', DISPATCH.forward, pk, hits);
    if (r.kind === 'drop') return out('blocked', 'dropped in filter FORWARD', pk);
    if (r.kind === 'accept' && !nft) return null;
    if (nft) {
      // An nftables accept is not final: iptables' FORWARD chain still runs.
      if (chain.policy === 'ACCEPT') return null;
      const accepts = chain.rules.filter((x) => x.includes('forward-accept') && (x.includes('--src-group') ? pk.iifGroup === BRIDGE_GROUP : pk.oifGroup === BRIDGE_GROUP));
      if (accepts.length) {
        hits.push({ table: 'filter', chain: 'FORWARD', rule: accepts[0] as string, owner: 'forward-accept' });
        return null;
      }
      return out('blocked', `iptables' filter/FORWARD policy ${chain.policy}`, pk);
    }
    const after = chain.rules.filter((x, i) => i > jumpAt && !isBrnetRule(x));
    if (after.length) return out('unknown', `brnet's rules do not decide, and a rule that is not brnet's follows: -A FORWARD ${after[0]}`, pk);
    return chain.policy === 'ACCEPT' ? null : out('blocked', `filter/FORWARD policy ${chain.policy} (no brnet rule accepts it)`, pk);
  }

  function translate(o: Outcome, table: Table, pk: Packet): void {
    const hit = hits.at(-1);
    if (!hit) return;
    if (o.kind === 'dnat') {
      const { ip, port } = splitHostPort(o.to);
      if (ip) pk.dst = ip;
      if (port !== null) pk.dport = port;
      pk.dstLocal = false;
      nat.push({ type: 'dnat', to: o.to, table, chain: hit.chain, rule: hit.rule, owner: hit.owner });
    } else if (o.kind === 'masquerade' || o.kind === 'snat') {
      nat.push({ type: o.kind, to: o.kind === 'snat' ? o.to : null, table, chain: hit.chain, rule: hit.rule, owner: hit.owner });
    }
  }
}
