// IP address management math: parsing, formatting, containment and allocation for IPv4 and
// IPv6. Pure functions over BigInt so one code path serves both families (IPv6 needs 128
// bits, which a JS number cannot hold) and so the module can be tested without a machine.
// Text parsing is delegated to ip-address; everything after parsing is plain arithmetic.
import { createHash } from 'node:crypto';
import { Address4, Address6 } from 'ip-address';
import { invalid } from '../errors.ts';

export type { Family } from './addr-text.ts';
import type { Family } from './addr-text.ts';
export interface Ip {
  family: Family;
  value: bigint;
}
/** `base` is always the network address: host bits are zero. */
export interface Cidr {
  family: Family;
  base: bigint;
  prefix: number;
}

const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

const hostMask = (family: Family, prefix: number): bigint => (1n << BigInt(bitsOf(family) - prefix)) - 1n;

// ::ffff:0:0/96. Kept as a value because both formatting and subnet validation need it.
const MAPPED_PREFIX = 0xffffn << 32n;

// A canonical dotted quad (no leading zeros): the text of every IPv4 subnet, gateway and
// address brnet stores. Read directly, because `network create` parses every subnet on the
// host and ip-address costs ~10 µs a call; any other form goes to ip-address.
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const DOTTED_QUAD = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseIp(s: string): Ip | null {
  // ip-address accepts a "/len" suffix and a "%zone" suffix as part of an address; neither
  // is an address, and a zone would silently be dropped from the value.
  if (typeof s !== 'string' || s === '' || s.includes('/') || s.includes('%')) return null;
  const quad = DOTTED_QUAD.exec(s);
  if (quad) return { family: 4, value: BigInt(((Number(quad[1]) << 24) | (Number(quad[2]) << 16) | (Number(quad[3]) << 8) | Number(quad[4])) >>> 0) };
  try {
    if (s.includes(':')) return { family: 6, value: new Address6(s).bigInt() };
    return { family: 4, value: new Address4(s).bigInt() };
  } catch {
    return null;
  }
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) return Address4.fromBigInt(ip.value).correctForm();
  // RFC 5952 §5 recommends dotted notation for IPv4-mapped addresses, and it is what the
  // kernel and iproute2 print, so output compares equal to `ip addr`. ip-address's
  // correctForm() would give "::ffff:102:304".
  if (ip.value >> 32n === 0xffffn) {
    return `::ffff:${Address4.fromBigInt(ip.value & 0xffffffffn).correctForm()}`;
  }
  return Address6.fromBigInt(ip.value).correctForm();
}

const PREFIX_RE = /^(?:0|[1-9][0-9]{0,2})$/;

export function parseCidr(s: string, what = 'subnet'): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) {
    const bare = parseIp(s);
    throw invalid(
      `invalid ${what} "${s}": not a CIDR`,
      bare ? `give a prefix length, e.g. ${s}/${bare.family === 4 ? 24 : 64}` : undefined,
    );
  }
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  // A strict pattern rather than Number(): Number accepts "", " 8", "0x10" and "1e1".
  if (ip === null || !PREFIX_RE.test(p)) throw invalid(`invalid ${what} "${s}": not a CIDR`);
  const prefix = Number(p);
  const bits = bitsOf(ip.family);
  if (prefix > bits) throw invalid(`invalid ${what} "${s}": the prefix length must be between 0 and ${bits}`);
  const c = cidrOf(ip, prefix);
  // Compared by value, not by text: "FD00::0/64" is an acceptable spelling of fd00::/64,
  // while "10.0.0.1/24" names a host and is almost always a typo for the network.
  if (c.base !== ip.value) throw invalid(`invalid ${what} "${s}": it should be ${formatCidr(c)}`);
  return c;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

export function cidrOf(ip: Ip, prefix: number): Cidr {
  const bits = bitsOf(ip.family);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
    throw invalid(`prefix length ${prefix} is out of range 0..${bits}`);
  }
  return { family: ip.family, base: ip.value & ~hostMask(ip.family, prefix), prefix };
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefix);
}

export function lastAddress(c: Cidr): bigint {
  return c.base + size(c) - 1n;
}

export function contains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && ip.value >= c.base && ip.value <= lastAddress(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  // Aligned power-of-two blocks never partially overlap, but the interval test is the
  // one that is obviously right without relying on that.
  return a.family === b.family && a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return (
    inner.family === outer.family &&
    inner.prefix >= outer.prefix &&
    contains(outer, { family: inner.family, value: inner.base })
  );
}

// Point-to-point subnets (RFC 3021 /31, RFC 6164 /127) and single-address subnets have
// no network/broadcast or anycast address to give up: every address is a host.
const isPointToPoint = (c: Cidr): boolean => c.prefix >= bitsOf(c.family) - 1;

export function firstHost(c: Cidr): Ip {
  return { family: c.family, value: isPointToPoint(c) ? c.base : c.base + 1n };
}

export function reservedAddresses(subnet: Cidr): bigint[] {
  if (isPointToPoint(subnet)) return [];
  // IPv6 has no broadcast; its base is the subnet-router anycast address (RFC 4291 §2.6.1).
  return subnet.family === 4 ? [subnet.base, lastAddress(subnet)] : [subnet.base];
}

export function isUsableHostAddress(subnet: Cidr, ip: Ip): boolean {
  return contains(subnet, ip) && !reservedAddresses(subnet).includes(ip.value);
}

const MULTICAST: Cidr = { family: 6, base: 0xffn << 120n, prefix: 8 };
const LINK_LOCAL: Cidr = { family: 6, base: 0xfe80n << 112n, prefix: 64 };
const MAPPED: Cidr = { family: 6, base: MAPPED_PREFIX, prefix: 96 };

const v4 = (a: number, b: number, prefix: number): Cidr => ({ family: 4, base: BigInt(((a << 24) | (b << 16)) >>> 0), prefix });

/**
 * IPv4 ranges no bridge can serve: "this network" (0/8), loopback (the kernel routes it to
 * lo whatever the bridge says), multicast, and the reserved 240/4 with the limited broadcast.
 * A subnet that overlaps any of them (0.0.0.0/0 and other short prefixes included) would take
 * over part of the host's routing for nothing.
 */
const V4_UNUSABLE: [Cidr, string][] = [
  [v4(0, 0, 8), '"this network" range 0.0.0.0/8'],
  [v4(127, 0, 8), 'loopback range 127.0.0.0/8'],
  [v4(224, 0, 4), 'multicast range 224.0.0.0/4'],
  [v4(240, 0, 4), 'reserved range 240.0.0.0/4'],
];
const V6_LOOPBACK: Cidr = { family: 6, base: 0n, prefix: 127 }; // :: and ::1

export function validateIpv4Subnet(c: Cidr): void {
  if (c.family !== 4) return;
  const text = formatCidr(c);
  if (c.prefix === 0) throw invalid(`subnet ${text} covers every IPv4 address: a bridge cannot own it`);
  for (const [range, what] of V4_UNUSABLE) if (overlaps(c, range)) throw invalid(`subnet ${text} overlaps the ${what}, which no bridge can serve`);
}

/** A unicast address a host can send from: not unspecified, loopback, multicast or reserved. */
export function isUnicast(ip: Ip): boolean {
  const one = (c: Cidr) => contains(c, ip);
  if (ip.family === 4) return !V4_UNUSABLE.some(([c]) => one(c));
  return !one(V6_LOOPBACK) && !one(MULTICAST) && !one(MAPPED);
}

export function validateIpv6Subnet(c: Cidr): void {
  if (c.family !== 6) return;
  const text = formatCidr(c);
  if (c.prefix === 0) throw invalid(`subnet ${text} covers every IPv6 address: a bridge cannot own it`);
  // "within", not "overlaps": a prefix shorter than /8 that covers ff00::/8 also covers
  // fe80::/64, and the link-local message describes that mistake better.
  if (cidrWithin(c, MULTICAST)) throw invalid(`multicast subnet ${text} is not allowed`);
  // The kernel puts fe80::/64 on every IPv6 interface; any other prefix touching it would
  // make on-link routing for link-local addresses ambiguous. Exactly fe80::/64 is allowed
  // because it is then the same route.
  if (overlaps(c, LINK_LOCAL) && !(c.base === LINK_LOCAL.base && c.prefix === LINK_LOCAL.prefix)) {
    throw invalid(`${text} clashes with the link-local prefix fe80::/64`);
  }
  // IPv4-mapped addresses never appear on the wire; they stand for IPv4 peers of a
  // dual-stack socket, so a bridge cannot own them.
  if (overlaps(c, MAPPED)) throw invalid(`${text} is not a valid IPv6 subnet`);
  if (overlaps(c, V6_LOOPBACK)) throw invalid(`subnet ${text} holds the unspecified address :: or the loopback ::1, which no bridge can serve`);
}

export interface Pool {
  base: string;
  size: number;
}

// Frozen because it is shared module state: a caller appending a user pool to it would
// change the defaults for every later allocation in the process.
export const DEFAULT_POOLS: Pool[] = Object.freeze(
  [
    { base: '172.17.0.0/16', size: 16 },
    { base: '172.18.0.0/16', size: 16 },
    { base: '172.19.0.0/16', size: 16 },
    { base: '172.20.0.0/14', size: 16 },
    { base: '172.24.0.0/14', size: 16 },
    { base: '172.28.0.0/14', size: 16 },
    { base: '192.168.0.0/16', size: 20 },
  ].map((p) => Object.freeze(p)),
) as Pool[];

interface Block {
  start: bigint;
  end: bigint;
}

// Sorted, disjoint intervals let the allocator answer "what blocks this candidate, and
// where does it end?" with one forward-moving index instead of scanning every used entry
// for every candidate.
function mergeBlocks(used: Cidr[]): Block[] {
  const sorted = used
    .map((c) => ({ start: c.base, end: lastAddress(c) }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Block[] = [];
  for (const b of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && b.start <= last.end + 1n) {
      if (b.end > last.end) last.end = b.end;
    } else {
      out.push({ ...b });
    }
  }
  return out;
}

const alignUp = (v: bigint, step: bigint): bigint => ((v + step - 1n) / step) * step;

export function allocateSubnet(pools: Pool[], family: Family, used: Cidr[]): Cidr | null {
  const blocks = mergeBlocks(used.filter((u) => u.family === family));
  const bits = bitsOf(family);
  for (const pool of pools) {
    const p = parseCidr(pool.base, 'address pool');
    if (p.family !== family) continue;
    if (!Number.isInteger(pool.size) || pool.size < p.prefix || pool.size > bits) {
      throw invalid(`invalid address pool ${pool.base}: size ${pool.size} must be between ${p.prefix} and ${bits}`);
    }
    const step = 1n << BigInt(bits - pool.size);
    const poolEnd = lastAddress(p);
    let i = 0;
    let cand = p.base;
    while (cand + step - 1n <= poolEnd) {
      while (i < blocks.length && blocks[i]!.end < cand) i++;
      const b = blocks[i];
      if (b === undefined || b.start > cand + step - 1n) return { family, base: cand, prefix: pool.size };
      // Every candidate up to the one holding b.end overlaps b, so jump straight past it:
      // a used /8 inside a pool of /24s costs one step, not 65536.
      cand = alignUp(b.end + 1n, step);
    }
  }
  return null;
}

export function ulaPool(machineId: string): Pool {
  // RFC 4193 asks for a pseudo-random 40-bit Global ID; hashing the machine id keeps it
  // random-looking across machines yet stable across runs without storing it anywhere.
  const digest = createHash('sha256').update(machineId).digest();
  let globalId = 0n;
  for (let k = 0; k < 5; k++) globalId = (globalId << 8n) | BigInt(digest[k] ?? 0);
  const base: Cidr = { family: 6, base: (0xfdn << 120n) | (globalId << 80n), prefix: 48 };
  return { base: formatCidr(base), size: 64 };
}

export function allocateAddress(subnet: Cidr, range: Cidr | null, taken: ReadonlySet<bigint>): Ip | null {
  let lo = subnet.base;
  let hi = lastAddress(subnet);
  if (range !== null) {
    if (range.family !== subnet.family) return null;
    // Clamp rather than trust: a range reaching outside the subnet must never hand out an
    // address the subnet's route does not cover.
    if (range.base > lo) lo = range.base;
    const rangeEnd = lastAddress(range);
    if (rangeEnd < hi) hi = rangeEnd;
  }
  const reserved = reservedAddresses(subnet);
  // Walking upward terminates after at most taken.size + reserved.length misses, because
  // each miss is a distinct member of those sets; a /64 is therefore never enumerated.
  for (let v = lo; v <= hi; v++) {
    if (!taken.has(v) && !reserved.includes(v)) return { family: subnet.family, value: v };
  }
  return null;
}
