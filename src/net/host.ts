// What the host already has, in views as cheap as each caller allows: links from sysfs, one
// by one as they are asked for (every view); prefixes to keep clear of from /proc (network
// create: readHostPrefixes); bridges' addresses (check, restore: readBridgeAddresses); and
// everything, global addresses and routes from one `ip -batch` plus /proc/net/ipv6_route
// (adopting a bridge, confirming a refusal: readHostAddresses). Dumping every link with
// `ip -d` instead costs as much in `ip` as in parsing its JSON, both growing with every veth
// on the host.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';
import { environment } from '../errors.ts';
import { isIfname, isIpText } from '../validate/values.ts';
import { run } from './exec.ts';

export interface HostAddr {
  family: 4 | 6;
  local: string;
  prefixlen: number;
  dev: string;
}
export interface HostLink {
  ifname: string;
  kind: string | null; // linkinfo.info_kind: "bridge", "veth", … (null for physical/loopback)
  master: string | null;
  mtu: number;
  address: string;
  up: boolean;
  alias: string | null;
  /** The device group (`ip link … group`); 0 is the default. */
  group: number;
}
export interface HostRoute {
  dst: string; // CIDR or plain address
  dev: string | null;
}
/** Link lookup, from sysfs on demand. */
export interface Links {
  get(name: string): HostLink | undefined;
  has(name: string): boolean;
}

export interface HostView {
  links: Links;
  addrs: HostAddr[];
  routes: HostRoute[];
}

interface IpAddrJson {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

function parseRoutes(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const rt of parseJsonArray(text, 'ip -j route') as { dst?: unknown; dev?: unknown; type?: string; table?: string }[]) {
    if (typeof rt?.dst !== 'string' || (rt.dev !== undefined && typeof rt.dev !== 'string')) continue;
    if (rt.dst === 'default' || rt.table === 'local') continue;
    if (rt.type && rt.type !== 'unicast') continue;
    routes.push({ dst: rt.dst, dev: (rt.dev as string | undefined) ?? null });
  }
  return routes;
}

/** /proc/net/ipv6_route: dst(32 hex) plen(hex) src plen nexthop metric ref use flags dev */
function readIpv6Routes(): HostRoute[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/ipv6_route', 'utf8');
  } catch {
    return []; // IPv6 disabled in this kernel
  }
  const out: HostRoute[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('fe80') || line.startsWith('ff')) continue; // link-local, multicast: cheap skip
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dstHex = '', plenHex = '', , , , , , , , dev = ''] = f;
    const plen = Number.parseInt(plenHex, 16);
    if (plen === 0 || dev === 'lo') continue; // default routes and local/loopback entries
    const groups = dstHex.match(/.{4}/g) ?? [];
    const dst = groups.join(':');
    if (dst.startsWith('ff') || dst.startsWith('fe80')) continue; // multicast, link-local
    out.push({ dst: `${dst}/${plen}`, dev });
  }
  return out;
}

/** IPv4 address of /proc/net/route's hex (the kernel prints the big-endian word as a host u32). */
function hexIpv4(hex: string, littleEndian: boolean): string {
  const b = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return (littleEndian ? b.reverse() : b).join('.');
}

/** /proc/net/route (the main table): Iface Destination Gateway Flags … Mask …; no default route. */
export function parseProcRoute(text: string, littleEndian = endianness() === 'LE'): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [dev = '', dst = '', , , , , , mask = ''] = f;
    const len = hexIpv4(mask, littleEndian)
      .split('.')
      .reduce((n, octet) => n + (Number(octet) >>> 0).toString(2).replace(/0/g, '').length, 0);
    if (len === 0) continue;
    out.push({ dst: `${hexIpv4(dst, littleEndian)}/${len}`, dev });
  }
  return out;
}

/**
 * The host's own IPv4 addresses, from /proc/net/fib_trie: each "|-- A.B.C.D" leaf followed by a
 * "/N host LOCAL" line. N is 32 for an address, and its prefix length for an address on lo,
 * whose whole subnet is local (the kernel routes all of it to the host, so no bridge may have
 * it either). The loopback range itself is left out.
 */
export function parseFibTrieLocal(text: string): { local: string; prefixlen: number }[] {
  const out = new Map<string, { local: string; prefixlen: number }>();
  let leaf = '';
  for (const line of text.split('\n')) {
    // Plain string tests first: the trie has several lines per prefix, and most are neither.
    const at = line.indexOf('|-- ');
    if (at >= 0) {
      const m = /^(\d+\.\d+\.\d+\.\d+)$/.exec(line.slice(at + 4));
      leaf = m?.[1] ?? '';
    } else if (leaf && line.endsWith(' host LOCAL') && !leaf.startsWith('127.')) {
      const len = Number(/\/(\d+) host LOCAL$/.exec(line)?.[1] ?? 'NaN');
      if (len >= 0 && len <= 32) out.set(`${leaf}/${len}`, { local: leaf, prefixlen: len });
    }
  }
  return [...out.values()];
}

/** /proc/net/if_inet6: address(32 hex) ifindex prefixlen scope flags dev; global scope only. */
export function parseIfInet6(text: string): HostAddr[] {
  const out: HostAddr[] = [];
  for (const line of text.split('\n')) {
    // Every veth has a link-local address: skipped before any splitting, they cost nothing.
    if (line.startsWith('fe80')) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[3] !== '00') continue;
    const [hex = '', , plen = '', , , dev = ''] = f;
    out.push({ family: 6, local: (hex.match(/.{4}/g) ?? []).join(':'), prefixlen: Number.parseInt(plen, 16), dev });
  }
  return out;
}

const readProc = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return ''; // IPv6 disabled in this kernel, or no IPv4 routes yet
  }
};

/**
 * What a new subnet must not overlap, from /proc (no process; /proc/net shows the caller's
 * network namespace): IPv4 routes of the main table, which include each address's subnet,
 * IPv4 addresses themselves (as /32, for addresses without a prefix route), global IPv6
 * addresses and, when `v6`, IPv6 routes. `ip addr` dumps every link (an order of
 * magnitude slower than these files on a host with many veths), and /proc/net/ipv6_route
 * lists three routes per link, so it is read only for IPv6 networks. IPv4 addresses carry no
 * device here: callers that need a device's addresses use readHostAddresses.
 */
export function readHostPrefixes(v6: boolean): HostView {
  const addrs: HostAddr[] = parseFibTrieLocal(readProc('/proc/net/fib_trie')).map((a) => ({ family: 4, ...a, dev: '' }));
  addrs.push(...parseIfInet6(readProc('/proc/net/if_inet6')));
  return { links: new SysfsLinks(), addrs, routes: [...parseProcRoute(readProc('/proc/net/route')), ...(v6 ? readIpv6Routes() : [])] };
}

const sys = (name: string, file: string): string | null => {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    return null;
  }
};

/** The names of every link (sysfs). */
export function linkNames(): string[] {
  return readdirNames('/sys/class/net');
}

/** The bridge a link is attached to: null when none, undefined when there is no such link. */
export function linkMaster(name: string): string | null | undefined {
  try {
    return readlinkSync(`/sys/class/net/${name}/master`).split('/').pop() ?? null;
  } catch {
    return existsSync(`/sys/class/net/${name}`) ? null : undefined;
  }
}

/**
 * The ports of a bridge, from sysfs; null when there is no such bridge. Only a bridge has
 * `brif/`, so one listing says that it exists, that it is a bridge and which links it holds.
 */
export function bridgePorts(bridge: string): Set<string> | null {
  try {
    return new Set(readdirSync(`/sys/class/net/${bridge}/brif`));
  } catch {
    return null;
  }
}

export function linkAlias(name: string): string | null {
  return sys(name, 'ifalias') || null;
}

/** One link from sysfs (no process). sysfs shows the network namespace it was mounted in. */
export function sysfsLink(name: string): HostLink | undefined {
  if (!name || name.includes('/') || name === '.' || name === '..' || !existsSync(`/sys/class/net/${name}`)) return undefined;
  let master: string | null = null;
  try {
    master = readlinkSync(`/sys/class/net/${name}/master`).split('/').pop() ?? null;
  } catch {}
  const flags = Number.parseInt(sys(name, 'flags') ?? '0', 16);
  return {
    ifname: name,
    kind: existsSync(`/sys/class/net/${name}/bridge`) ? 'bridge' : null,
    master,
    mtu: Number(sys(name, 'mtu') ?? 0),
    address: sys(name, 'address') ?? '',
    up: (flags & 1) === 1,
    alias: sys(name, 'ifalias') || null,
    group: Number(sys(name, 'netdev_group') ?? 0),
  };
}

class SysfsLinks implements Links {
  get(name: string) {
    return sysfsLink(name);
  }
  has(name: string) {
    return this.get(name) !== undefined;
  }
}

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Links only (from sysfs, no process): for plans that look at no address or route. */
export function linksView(): HostView {
  return { links: new SysfsLinks(), addrs: [], routes: [] };
}

/**
 * `ip -j addr` output, read as input: an entry whose device name, address or prefix length is
 * not what brnet itself would accept is left out (an adopted bridge's addresses end up in the
 * state, and every address may end up in an `ip -batch` line).
 */
export function parseAddrs(text: string): HostAddr[] {
  const addrs: HostAddr[] = [];
  for (const l of parseJsonArray(text, 'ip -j addr') as IpAddrJson[]) {
    if (typeof l?.ifname !== 'string' || !isIfname(l.ifname) || !Array.isArray(l.addr_info)) continue;
    for (const a of l.addr_info) {
      if (a?.family !== 'inet' && a?.family !== 'inet6') continue;
      const max = a.family === 'inet' ? 32 : 128;
      if (typeof a.local !== 'string' || !isIpText(a.local) || !Number.isInteger(a.prefixlen) || a.prefixlen < 0 || a.prefixlen > max) continue;
      addrs.push({ family: a.family === 'inet' ? 4 : 6, local: a.local, prefixlen: a.prefixlen, dev: l.ifname });
    }
  }
  return addrs;
}

/** JSON that must be an array (what `ip -j` prints), or exit 5 naming the command. */
export function parseJsonArray(text: string, what: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw environment(`cannot read the output of ${what}: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw environment(`cannot read the output of ${what}: not a JSON array`);
  return v;
}

/** Addresses (global scope) and routes, with links from sysfs: everything a plan may ask. */
export async function readHostAddresses(): Promise<HostView> {
  const r = await run(['ip', '-j', '-batch', '-'], { input: 'addr show scope global\nroute show\n' });
  const [addrText = '[]', routesText = '[]'] = r.stdout.split('\n').filter((l) => l.startsWith('['));
  return { links: new SysfsLinks(), addrs: parseAddrs(addrText), routes: [...parseRoutes(routesText), ...readIpv6Routes()] };
}

/**
 * The global addresses of bridges only, no routes: what `check` and `restore` compare and
 * what removing an adopted bridge needs. The kernel filters the link dump by kind, so
 * veths cost nothing here, unlike a dump of every link (or /proc/net/ipv6_route).
 */
export async function readBridgeAddresses(): Promise<HostView> {
  const r = await run(['ip', '-j', 'addr', 'show', 'type', 'bridge', 'scope', 'global']);
  return { links: new SysfsLinks(), addrs: parseAddrs(r.stdout.trim() || '[]'), routes: [] };
}
