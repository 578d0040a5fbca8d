// What the host already has: links, addresses and routes. Read once per command, with one
// `ip -batch` (links with details + IPv4 routes) and /proc/net/ipv6_route (no process).
import { readFileSync } from 'node:fs';
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
export interface HostView {
  links: Map<string, HostLink>;
  addrs: HostAddr[];
  routes: HostRoute[];
}

interface IpAddrJson {
  ifname: string;
  mtu: number;
  address?: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function readHost(): Promise<HostView> {
  const r = await run(['ip', '-j', '-d', '-batch', '-'], { input: 'addr show\nroute show table all\n' });
  const [linksText = '[]', routesText = '[]'] = r.stdout.split('\n').filter((l) => l.startsWith('['));
  const links = new Map<string, HostLink>();
  const addrs: HostAddr[] = [];
  for (const l of JSON.parse(linksText) as IpAddrJson[]) {
    links.set(l.ifname, {
      ifname: l.ifname,
      kind: l.linkinfo?.info_kind ?? null,
      master: l.master ?? null,
      mtu: l.mtu,
      address: l.address ?? '',
      up: (l.flags ?? []).includes('UP'),
      alias: l.ifalias ?? null,
    });
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      addrs.push({ family: a.family === 'inet' ? 4 : 6, local: a.local, prefixlen: a.prefixlen, dev: l.ifname });
    }
  }
  const routes: HostRoute[] = [];
  for (const rt of JSON.parse(routesText) as { dst: string; dev?: string; type?: string; table?: string }[]) {
    if (rt.dst === 'default' || rt.table === 'local') continue;
    if (rt.type && rt.type !== 'unicast') continue;
    routes.push({ dst: rt.dst, dev: rt.dev ?? null });
  }
  routes.push(...readIpv6Routes());
  return { links, addrs, routes };
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
