// One packet through brnet's rule model (rules.ts renderRules), for `brnet explain`: the
// rules are the ones the iptables backend writes and the nftables backend renders rule for
// rule, so one evaluator answers for both. It reads the rule specs brnet itself wrote, in
// their small grammar; anything outside it is reported, never guessed at.
import { type Ip, contains, parseCidr, parseIp } from '../net/ipam.ts';
import type { Table, TableSet } from './rules.ts';

export interface Packet {
  src: Ip;
  dst: Ip;
  /** tcp, udp, sctp, or icmp (for IPv6 too: ipv6-icmp in the rules). */
  proto: string;
  dport: number | null;
  iif: string | null;
  oif: string | null;
  srcLocal: boolean;
  dstLocal: boolean;
  /** The device groups of iif and oif (brnet's bridges are in BRIDGE_GROUP). */
  iifGroup: number | null;
  oifGroup: number | null;
  /** Known only for a reply (the explained packet's own source port is the client's choice). */
  sport?: number;
  /** A reply of a connection conntrack knows (else the packet opens one: NEW). */
  established?: boolean;
}

export interface Hit {
  table: Table;
  chain: string;
  rule: string;
  /** The owner named by the rule's mark: "web", "web:app"; null for a rule without one. */
  owner: string | null;
}

export type Outcome =
  | { kind: 'accept' | 'drop' | 'return' }
  | { kind: 'dnat'; to: string }
  | { kind: 'masquerade' }
  | { kind: 'snat'; to: string };

/** A rule brnet renders that this evaluator does not understand: the answer is then unknown. */
export class UnknownRule extends Error {}

interface Compiled {
  test(p: Packet): boolean;
  target: string;
  args: Record<string, string>;
  owner: string | null;
}

const cache = new Map<string, Compiled>();

function ipOrCidrTest(text: string): (ip: Ip) => boolean {
  if (text.includes('/')) {
    const c = parseCidr(text);
    return (ip) => contains(c, ip);
  }
  const a = parseIp(text);
  if (!a) throw new UnknownRule(`not an address: ${text}`);
  return (ip) => ip.family === a.family && ip.value === a.value;
}

function portTest(text: string): (p: number | null) => boolean {
  const [lo, hi = lo] = text.split(':').map(Number);
  if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw new UnknownRule(`not a port: ${text}`);
  return (p) => p !== null && p >= (lo as number) && p <= (hi as number);
}

export function compile(spec: string): Compiled {
  const known = cache.get(spec);
  if (known) return known;
  const words = spec.split(' ').filter(Boolean);
  const tests: ((p: Packet) => boolean)[] = [];
  let owner: string | null = null;
  let target = '';
  const args: Record<string, string> = {};
  for (let i = 0; i < words.length; i++) {
    let w = words[i] as string;
    let not = false;
    if (w === '!') {
      not = true;
      w = words[++i] ?? '';
    }
    const v = words[i + 1] ?? '';
    const add = (t: (p: Packet) => boolean) => {
      tests.push(not ? (p) => !t(p) : t);
      i++;
    };
    switch (w) {
      case '-i':
        add((p) => p.iif === v);
        break;
      case '-o':
        add((p) => p.oif === v);
        break;
      case '-s': {
        const t = ipOrCidrTest(v);
        add((p) => t(p.src));
        break;
      }
      case '-d': {
        const t = ipOrCidrTest(v);
        add((p) => t(p.dst));
        break;
      }
      case '-p': {
        const proto = v === 'ipv6-icmp' ? 'icmp' : v;
        add((p) => p.proto === proto);
        break;
      }
      case '--dport': {
        const t = portTest(v);
        add((p) => t(p.dport));
        break;
      }
      case '--sport': {
        // The source port of a packet that opens a connection is the client's ephemeral one,
        // unknown here: brnet matches it only together with ESTABLISHED (a link's replies),
        // which such a packet never is.
        const t = portTest(v);
        add((p) => p.sport !== undefined && t(p.sport));
        break;
      }
      case '--icmpv6-type':
        // The packet explained without a port is an echo request; brnet's ICMPv6 matches are
        // neighbour discovery (for links), which it is not.
        add(() => v === 'echo-request' || v === '128');
        break;
      case '--ctstate':
        add((p) => v.split(',').includes(p.established ? 'ESTABLISHED' : 'NEW'));
        break;
      case '--dst-type':
      case '--src-type':
        if (v !== 'LOCAL') throw new UnknownRule(`address type ${v}`);
        add(w === '--dst-type' ? (p) => p.dstLocal : (p) => p.srcLocal);
        break;
      case '--src-group':
      case '--dst-group': {
        const g = Number(v);
        add(w === '--src-group' ? (p) => p.iifGroup === g : (p) => p.oifGroup === g);
        break;
      }
      case '-m':
        i++; // the match's options follow
        break;
      case '--comment':
        owner = /^brnet(?:@[0-9a-f]{8})?:(.+)$/.exec(v)?.[1] ?? null;
        i++;
        break;
      case '-j':
        target = v;
        i++;
        while (words[i + 1]?.startsWith('--')) {
          args[words[i + 1] as string] = words[i + 2] ?? '';
          i += 2;
        }
        break;
      default:
        throw new UnknownRule(`cannot evaluate ${JSON.stringify(w)} in rule: ${spec}`);
    }
  }
  if (!target) throw new UnknownRule(`a rule without a target: ${spec}`);
  const c: Compiled = { test: (p) => tests.every((t) => t(p)), target, args, owner };
  cache.set(spec, c);
  return c;
}

/**
 * The packet through `chain` of `table` and the chains it jumps to, as the kernel walks
 * them; every rule that matches on the way is added to `hits`.
 */
export function walk(tables: TableSet, table: Table, chain: string, p: Packet, hits: Hit[], depth = 0): Outcome {
  if (depth > 8) throw new UnknownRule(`chains nested too deep at ${chain}`);
  for (const rule of tables[table].get(chain) ?? []) {
    const c = compile(rule);
    if (!c.test(p)) continue;
    hits.push({ table, chain, rule, owner: c.owner });
    switch (c.target) {
      case 'ACCEPT':
        return { kind: 'accept' };
      case 'DROP':
        return { kind: 'drop' };
      case 'RETURN':
        return { kind: 'return' };
      case 'DNAT':
        return { kind: 'dnat', to: c.args['--to-destination'] ?? '' };
      case 'MASQUERADE':
        return { kind: 'masquerade' };
      case 'SNAT':
        return { kind: 'snat', to: c.args['--to-source'] ?? '' };
      default: {
        if (!tables[table].has(c.target)) throw new UnknownRule(`jump to ${c.target}, which brnet does not render`);
        const r = walk(tables, table, c.target, p, hits, depth + 1);
        if (r.kind !== 'return') return r;
      }
    }
  }
  return { kind: 'return' };
}

/** "10.1.0.2:80", "[fd00::2]:80" -> address and port. */
export function splitHostPort(to: string): { ip: Ip | null; port: number | null } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(to) ?? /^([^:]+)(?::(\d+))?$/.exec(to);
  return { ip: m ? parseIp(m[1] as string) : null, port: m?.[2] ? Number(m[2]) : null };
}
