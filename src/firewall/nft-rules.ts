// The nftables rule set as a pure function of the state, rule for rule the same traffic
// semantics as rules.ts renders for iptables. brnet owns two tables, `ip brnet` and
// `ip6 brnet`: each is the direct translation of one iptables family (rules without an
// address match stay in their family, as in iptables, with no `meta nfproto` on every rule),
// and both change in one `nft -f` transaction.
//
// Layout of each table:
//   filter-forward (filter hook forward, priority filter): five verdict-map lookups keyed by
//                  interface name, in the order of the iptables dispatcher's groups:
//                    oifname vmap @fwd-ct       ct-<id>      established/related accept
//                    oifname vmap @fwd-int-in   int-in-<id>  internal: nothing in from outside
//                    iifname vmap @fwd-int-out  int-out-<id> internal: nothing out
//                    oifname vmap @fwd-in       in-<id>      published ports, then the drop
//                    iifname vmap @fwd-icc      icc-<id>     ICC and outgoing (with ICC
//                                                            off, legacy links before its drop)
//                  a packet that touches no brnet bridge does five lookups and nothing else,
//                  however many networks there are.
//   nat-prerouting, nat-output (dstnat): fib daddr type local -> dnat-all -> dnat-<id>
//   nat-postrouting (srcnat): post-all -> post-<id>
//   raw-prerouting (raw): raw-all -> raw-<id>
// (Names of nft keywords, such as `forward` or `dnat`, would need quoting: none is used.)
// Every rule carries a counter and the comment brnet@<instance>:<owner>.
import { type Family, ND_TYPES, PROXY_OWNER, bindings, chainId, enabledFamilies, isNatMode, linkedPairs, subnetOf } from './rules.ts';
import { markPrefix } from '../net/marks.ts';
import { type GatewayMode, type Network, type State, modeOf } from '../state/schema.ts';

export const NFT_TABLE = 'brnet';
export const nftFamily = (f: Family) => (f === 4 ? 'ip' : 'ip6');

/** What brnet has in one family's table: regular chains and verdict maps (base chains are fixed). */
export interface NftTable {
  /** chain -> rules, each as `nft add rule` takes it after the chain name. */
  chains: Map<string, string[]>;
  /** map -> interface name -> the chain it jumps to. */
  maps: Map<string, Map<string, string>>;
}
export interface NftRuleset {
  4: NftTable;
  6: NftTable;
  instance: string | null;
}

export const MAPS = ['fwd-ct', 'fwd-int-in', 'fwd-int-out', 'fwd-in', 'fwd-icc'] as const;

/** The base chains: their declaration (hook, priority) and their fixed rules. */
export function baseChains(): { name: string; decl: string; read: string; rules: string[] }[] {
  const local = 'fib daddr type local';
  return [
    {
      name: 'filter-forward',
      decl: 'type filter hook forward priority filter; policy accept;',
      read: 'filter/forward/0/accept',
      rules: [
        'oifname vmap @fwd-ct',
        'oifname vmap @fwd-int-in',
        'iifname vmap @fwd-int-out',
        'oifname vmap @fwd-in',
        'iifname vmap @fwd-icc',
      ],
    },
    { name: 'nat-prerouting', decl: 'type nat hook prerouting priority dstnat; policy accept;', read: 'nat/prerouting/-100/accept', rules: [`${local} jump dnat-all`] },
    { name: 'nat-output', decl: 'type nat hook output priority -100; policy accept;', read: 'nat/output/-100/accept', rules: [`${local} jump dnat-all`] },
    { name: 'nat-postrouting', decl: 'type nat hook postrouting priority srcnat; policy accept;', read: 'nat/postrouting/100/accept', rules: ['jump post-all'] },
    { name: 'raw-prerouting', decl: 'type filter hook prerouting priority raw; policy accept;', read: 'filter/prerouting/-300/accept', rules: ['jump raw-all'] },
  ];
}

const q = (ifname: string) => `"${ifname}"`;

/**
 * All of brnet's chains and maps for `state`. With `only`, the per-network chains of other
 * networks are left out (the dispatchers and maps are always complete), as renderRules does.
 */
export function renderNft(state: State, only?: ReadonlySet<string>): NftRuleset {
  const rs: NftRuleset = { 4: emptyTable(), 6: emptyTable(), instance: state.instance };
  const prefix = markPrefix(state.instance);
  for (const f of enabledFamilies(state)) renderFamily(state, f, rs[f], prefix, only);
  return rs;
}

export function emptyTable(): NftTable {
  return { chains: new Map(), maps: new Map() };
}

export const hasTable = (t: NftTable) => t.chains.size > 0;

function renderFamily(state: State, f: Family, t: NftTable, prefix: string, only?: ReadonlySet<string>): void {
  const nets = state.networks.filter((n) => subnetOf(n, f) !== null);
  if (!nets.length) return;
  const tag = (owner: string) => `comment "${prefix}:${owner}"`;
  const ip = f === 4 ? 'ip' : 'ip6';
  const maps = new Map(MAPS.map((m) => [m, new Map<string, string>()]));
  const dnat: string[] = [];
  const post: string[] = [];
  const raw: string[] = [];
  t.chains.set('dnat-all', dnat);
  t.chains.set('post-all', post);
  t.chains.set('raw-all', raw);
  for (const [name, m] of maps) t.maps.set(name, m);
  const proxy = state.config.userlandProxy;
  // As rules.ts: loopback is the proxy's, left out at the head of the DNAT dispatcher.
  if (proxy) dnat.push(`${ip} daddr ${f === 4 ? '127.0.0.0/8' : '::1'} counter return ${tag(PROXY_OWNER)}`);

  for (const n of nets) {
    const id = chainId(n);
    const br = q(n.bridge);
    const own = !only || only.has(n.name);
    const set = (chain: string, rules: () => string[]) => {
      if (own) t.chains.set(chain, rules());
    };
    const mode = modeOf(n, f);
    if (!n.internal) {
      maps.get('fwd-ct')!.set(n.bridge, `ct-${id}`);
      set(`ct-${id}`, () => [`ct state established,related counter accept ${tag(n.name)}`]);
      maps.get('fwd-in')!.set(n.bridge, `in-${id}`);
      set(`in-${id}`, () => ingress(n, f, mode, tag));
    } else {
      maps.get('fwd-int-in')!.set(n.bridge, `int-in-${id}`);
      set(`int-in-${id}`, () => [`iifname != ${br} counter drop ${tag(n.name)}`]);
      maps.get('fwd-int-out')!.set(n.bridge, `int-out-${id}`);
      set(`int-out-${id}`, () => [`oifname != ${br} counter drop ${tag(n.name)}`]);
    }
    maps.get('fwd-icc')!.set(n.bridge, `icc-${id}`);
    set(`icc-${id}`, () => {
      if (n.icc) return [n.internal ? `oifname ${br} counter accept ${tag(n.name)}` : `counter accept ${tag(n.name)}`];
      const rules = linkRules(n, f, tag);
      rules.push(`oifname ${br} counter drop ${tag(n.name)}`);
      if (!n.internal) rules.push(`oifname != ${br} counter accept ${tag(n.name)}`);
      return rules;
    });
    if (n.internal) continue;
    if (isNatMode(mode)) {
      dnat.push(`jump dnat-${id}`);
      post.push(`jump post-${id}`);
      set(`dnat-${id}`, () =>
        bindings(n, f).map(({ ep, cip, port }) => {
          const ll = f === 6 ? 'ip6 saddr != fe80::/10 ' : '';
          const hip = port.hostIp === '0.0.0.0' || port.hostIp === '::' ? '' : `${ip} daddr ${port.hostIp} `;
          const notOwn = proxy && port.proto !== 'sctp' ? `iifname != ${br} ` : '';
          const to = f === 4 ? `${cip}:${port.containerPort}` : `[${cip}]:${port.containerPort}`;
          return `${notOwn}${ll}${hip}${port.proto} dport ${port.hostPort} counter dnat to ${to} ${tag(`${n.name}:${ep.name}`)}`;
        }),
      );
      set(`post-${id}`, () => postRules(n, f, tag, proxy));
    }
    raw.push(`jump raw-${id}`);
    set(`raw-${id}`, () => rawRules(n, f, mode, tag));
  }
}

type Tag = (owner: string) => string;

function ingress(n: Network, f: Family, mode: GatewayMode, tag: Tag): string[] {
  const br = q(n.bridge);
  const ip = f === 4 ? 'ip' : 'ip6';
  const rules: string[] = [];
  if (mode !== 'nat-unprotected') {
    const seen = new Set<string>();
    for (const { ep, cip, port } of bindings(n, f)) {
      const r = `iifname != ${br} ${ip} daddr ${cip} ${port.proto} dport ${port.containerPort} counter accept ${tag(`${n.name}:${ep.name}`)}`;
      if (!seen.has(r)) rules.push(r);
      seen.add(r);
    }
  }
  if (mode === 'routed') rules.push(`iifname != ${br} ${f === 4 ? 'ip protocol icmp' : 'meta l4proto ipv6-icmp'} counter accept ${tag(n.name)}`);
  rules.push(`iifname != ${br} counter ${mode === 'nat-unprotected' ? 'accept' : 'drop'} ${tag(n.name)}`);
  return rules;
}

/** Legacy links, as rules.ts renders them for iptables: neighbour discovery in IPv6, to TO on the port, and replies back. */
function linkRules(n: Network, f: Family, tag: Tag): string[] {
  const br = q(n.bridge);
  const ip = f === 4 ? 'ip' : 'ip6';
  const pairs = linkedPairs(n, f);
  const nd = f === 6 && pairs.length ? ND_TYPES.map((t) => `oifname ${br} icmpv6 type ${t.nft} counter accept ${tag(n.name)}`) : [];
  return [
    ...nd,
    ...pairs.flatMap(({ from, fromIp, toIp, proto, port }) => [
      `oifname ${br} ${ip} saddr ${fromIp} ${ip} daddr ${toIp} ${proto} dport ${port} counter accept ${tag(`${n.name}:${from.name}`)}`,
      `oifname ${br} ${ip} saddr ${toIp} ${ip} daddr ${fromIp} ${proto} sport ${port} ct state established counter accept ${tag(`${n.name}:${from.name}`)}`,
    ]),
  ];
}

function postRules(n: Network, f: Family, tag: Tag, proxy: boolean): string[] {
  const br = q(n.bridge);
  const ip = f === 4 ? 'ip' : 'ip6';
  const rules: string[] = [];
  const sub = subnetOf(n, f);
  const snat = f === 4 ? n.snatIpv4 : n.snatIpv6;
  if (n.masquerade && sub) rules.push(`${ip} saddr ${sub} oifname != ${br} counter ${snat ? `snat to ${snat}` : 'masquerade'} ${tag(n.name)}`);
  if (!proxy) rules.push(`oifname ${br} fib saddr type local counter masquerade ${tag(n.name)}`);
  const seen = new Set<string>();
  for (const { ep, cip, port } of bindings(n, f)) {
    if (proxy && port.proto !== 'sctp') continue;
    const r = `${ip} saddr ${cip} ${ip} daddr ${cip} ${port.proto} dport ${port.containerPort} counter masquerade ${tag(`${n.name}:${ep.name}`)}`;
    if (!seen.has(r)) rules.push(r);
    seen.add(r);
  }
  return rules;
}

function rawRules(n: Network, f: Family, mode: GatewayMode, tag: Tag): string[] {
  const ip = f === 4 ? 'ip' : 'ip6';
  const rules: string[] = [];
  const fc = f === 4 ? n.ipv4 : n.ipv6;
  if (mode === 'nat' && fc) {
    for (const t of n.trustedInterfaces) rules.push(`${ip} daddr ${fc.subnet} iifname ${q(t)} counter accept ${tag(n.name)}`);
    if (fc.gateway) rules.push(`${ip} daddr ${fc.gateway} counter return ${tag(n.name)}`);
    rules.push(`${ip} daddr ${fc.subnet} iifname != ${q(n.bridge)} counter drop ${tag(n.name)}`);
  }
  if (f === 4) {
    for (const { ep, port } of bindings(n, f)) {
      if (!port.hostIp.startsWith('127.')) continue;
      rules.push(`ip daddr ${port.hostIp} iifname != "lo" ${port.proto} dport ${port.hostPort} counter drop ${tag(`${n.name}:${ep.name}`)}`);
    }
  }
  return rules;
}
