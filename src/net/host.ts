// What the host already has: global addresses and routes from one `ip -batch` (plus
// /proc/net/ipv6_route), and links from sysfs, one by one as they are asked for. Dumping
// every link with `ip -d` instead costs ~50 ms in `ip` and as much again parsing 1.7 MB of
// JSON on a host with 1,000 veths; this view is a tenth of that.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
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
  for (const rt of JSON.parse(text) as { dst: string; dev?: string; type?: string; table?: string }[]) {
    if (rt.dst === 'default' || rt.table === 'local') continue;
    if (rt.type && rt.type !== 'unicast') continue;
    routes.push({ dst: rt.dst, dev: rt.dev ?? null });
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

/** Addresses (global scope) and routes, with links from sysfs: the cheap view. */
export async function readHostAddresses(): Promise<HostView> {
  const r = await run(['ip', '-j', '-batch', '-'], { input: 'addr show scope global\nroute show\n' });
  const [addrText = '[]', routesText = '[]'] = r.stdout.split('\n').filter((l) => l.startsWith('['));
  const addrs: HostAddr[] = [];
  for (const l of JSON.parse(addrText) as IpAddrJson[]) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      addrs.push({ family: a.family === 'inet' ? 4 : 6, local: a.local, prefixlen: a.prefixlen, dev: l.ifname });
    }
  }
  return { links: new SysfsLinks(), addrs, routes: [...parseRoutes(routesText), ...readIpv6Routes()] };
}
