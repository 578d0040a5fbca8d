// The binding allocator, pure: from port requests (parsed SPECs), the state and what the host
// says of its ports, to the bindings to add (host IP, host port, container port, protocol),
// or a conflict naming who holds a port; and the bindings an unpublish SPEC matches.
import { conflict, invalid, notFound } from '../errors.ts';
import { bindingText } from '../net/addr-text.ts';
import {
  type Listener,
  type PortRequest,
  UNSPECIFIED,
  ephemeralPorts,
  hostIpsOverlap,
  hostPortText,
  ipFamily,
  listenerBlocks,
} from '../net/ports.ts';
import type { Endpoint, Network, Port, State } from '../state/schema.ts';
import type { Host } from './host.ts';
import { isRouted, modeOf } from './lookup.ts';
import { isProxySocket } from './proxy-ports.ts';

/** What the allocator asks of the host (read lazily: a call that needs neither reads neither). */
export type HostPorts = Pick<Host, 'listeners' | 'ephemeral'> & Partial<Pick<Host, 'hostIpv6'>>;

interface Target {
  hostIp: string;
  routed: boolean;
}

/**
 * The host IPs one request binds: one per address family the endpoint has, or the one asked
 * for. With the userland proxy, a TCP or UDP port of an endpoint without IPv6 is also bound
 * on `::` (when the host has IPv6), and an IPv6 host address may be asked for: the proxy
 * carries it to the endpoint's IPv4 address (6-to-4), as the reference driver does.
 */
function targetsOf(net: Network, ep: Endpoint, r: PortRequest, proxy: boolean, hostIpv6: boolean): Target[] {
  // Not where IPv6 is routed: a routed binding opens the endpoint's own IPv6 address, which it has none of.
  const sixToFour = proxy && r.proto !== 'sctp' && ep.ipv4 !== null && ep.ipv6 === null && modeOf(net, 6) !== 'routed';
  const has = { 4: ep.ipv4 !== null, 6: ep.ipv6 !== null || sixToFour };
  // --host-binding-ip 0.0.0.0 is the reference driver's default and means "all addresses".
  const dflt = net.hostBindingIp && net.hostBindingIp !== '0.0.0.0' ? net.hostBindingIp : null;
  const explicit = r.hostIp ?? dflt;
  let ips: string[];
  if (explicit !== null) {
    const f = ipFamily(explicit);
    if (!has[f]) {
      throw invalid(
        `cannot publish "${r.spec}" on ${explicit}: endpoint ${ep.name} has no IPv${f} address`,
        r.hostIp === null ? `${explicit} is the host binding IP of network ${net.name}; give a host IP in the SPEC` : undefined,
      );
    }
    ips = [explicit];
  } else {
    ips = ([4, 6] as const).filter((f) => has[f] && (f === 4 || ep.ipv6 !== null || hostIpv6)).map((f) => UNSPECIFIED[f]);
    if (!ips.length) throw invalid(`cannot publish "${r.spec}": endpoint ${ep.name} has no address`);
  }
  return ips.map((ip) => {
    const f = ipFamily(ip);
    // Routed mode has no NAT: the host IP and port mean nothing (the reference driver ignores
    // them too); the binding opens the container port to the outside.
    if (modeOf(net, f) === 'routed') return { hostIp: UNSPECIFIED[f], routed: true };
    if (ip === '::1' && !(proxy && r.proto !== 'sctp')) {
      // IPv4 loopback works through route_localnet; IPv6 has no equivalent, and without a
      // userland proxy nothing could carry [::1] to the endpoint.
      throw invalid(
        `cannot publish "${r.spec}" on ::1: IPv6 loopback cannot be forwarded to an endpoint${proxy ? ' over SCTP' : ' without the userland proxy'}`,
        proxy ? 'publish on 127.0.0.1' : 'publish on 127.0.0.1, or turn the proxy on: brnet config set userland-proxy true',
      );
    }
    return { hostIp: ip, routed: false };
  });
}

interface Holder {
  hostIp: string;
  /** Who holds it, for the message; a function because it is needed only on a conflict. */
  owner: () => string;
}

/**
 * Decides the host IPs and host ports of `requests` for endpoint `ep` of `net`, without
 * changing anything: conflicts (exit 4) with bindings brnet already made anywhere, with each
 * other, and with sockets listening on the host; invalid combinations (exit 2).
 *
 * brnet has no daemon, so nothing binds the host port: it is "held" only by the state file,
 * which every brnet call consults under the lock. A program that starts listening on the port
 * later is not stopped, and never sees the published traffic (the DNAT happens first).
 */
export function planBindings(state: State, net: Network, ep: Endpoint, requests: readonly PortRequest[], host: HostPorts): Port[] {
  if (!requests.length) return [];
  if (net.internal) {
    throw conflict(
      `cannot publish ports of endpoint ${ep.name}: network ${net.name} is internal`,
      'an internal network has no path to or from the outside; attach the endpoint to another network to publish ports',
    );
  }
  // proto:port -> who holds it, over every NAT binding of every network.
  const held = new Map<string, Holder[]>();
  const hold = (proto: string, port: number, h: Holder) => {
    const k = `${proto}:${port}`;
    const list = held.get(k) ?? [];
    list.push(h);
    held.set(k, list);
  };
  // With every host port given, only bindings on those ports can clash: the others are not
  // indexed (a batch publishing 100 ports on a host with 1,000 would otherwise index 100,000).
  const inRequests = requests.every((r) => r.hostPort !== null)
    ? (port: number) => requests.some((r) => port >= (r.hostPort as number) && port <= (r.hostPortEnd ?? (r.hostPort as number)))
    : () => true;
  for (const n of state.networks) {
    for (const e of n.endpoints) {
      for (const p of e.ports) {
        if (inRequests(p.hostPort) && !isRouted(n, p)) hold(p.proto, p.hostPort, { hostIp: p.hostIp, owner: () => `endpoint ${n.name}/${e.name} (${bindingText(p)})` });
      }
    }
  }
  let listenIndex: Map<string, Listener[]> | undefined;
  const listening = (proto: string, port: number): Listener[] => {
    if (proto === 'sctp') return []; // SCTP sockets are not in /proc/net/{tcp,udp}
    if (!listenIndex) {
      listenIndex = new Map();
      for (const l of host.listeners()) {
        const k = `${l.proto}:${l.port}`;
        listenIndex.set(k, [...(listenIndex.get(k) ?? []), l]);
      }
    }
    return listenIndex.get(`${proto}:${port}`) ?? [];
  };
  /** Why proto/port cannot be bound on hostIp (and what to do), or null when it is free. */
  const takenBy = (proto: string, port: number, hostIp: string): { why: string; hint: string } | null => {
    const h = held.get(`${proto}:${port}`)?.find((x) => hostIpsOverlap(x.hostIp, hostIp));
    if (h) return { why: `already published by ${h.owner()}`, hint: 'choose another host port, or unpublish that one first' };
    const l = listening(proto, port).find((x) => listenerBlocks(x, hostIp) && !isProxySocket(state, x));
    if (l) return { why: `a socket on the host listens on ${hostPortText(l.ip, l.port)}/${proto}`, hint: `see which program holds it: ss -lnp 'sport = :${port}'` };
    return null;
  };

  const out: Port[] = [];
  const same = (a: Port, b: Port) =>
    a.proto === b.proto && a.hostIp === b.hostIp && a.hostPort === b.hostPort && a.containerPort === b.containerPort;
  for (const r of requests) {
    const targets = targetsOf(net, ep, r, state.config.userlandProxy, host.hostIpv6?.() ?? true);
    const nat = targets.filter((t) => !t.routed);
    const free = (port: number) => nat.every((t) => takenBy(r.proto, port, t.hostIp) === null);
    let hostPort = 0;
    if (nat.length) {
      if (r.hostPort === null) {
        const range = host.ephemeral();
        let found: number | undefined;
        for (const p of ephemeralPorts(range)) {
          if (free(p)) {
            found = p;
            break;
          }
        }
        if (found === undefined) {
          throw conflict(`cannot publish "${r.spec}": no free ${r.proto} port left in the ephemeral range ${range.start}-${range.end}`, 'give a host port in the SPEC');
        }
        hostPort = found;
      } else if (r.hostPort === r.hostPortEnd) {
        hostPort = r.hostPort;
        for (const t of nat) {
          const taken = takenBy(r.proto, hostPort, t.hostIp);
          if (taken) throw conflict(`cannot publish "${r.spec}": ${hostPortText(t.hostIp, hostPort)}/${r.proto} is in use: ${taken.why}`, taken.hint);
        }
      } else {
        // "first free port of the range": explicit ranges do not skip ip_local_reserved_ports.
        const end = r.hostPortEnd ?? r.hostPort;
        let p = r.hostPort;
        while (p <= end && !free(p)) p++;
        if (p > end) throw conflict(`cannot publish "${r.spec}": every ${r.proto} port of ${r.hostPort}-${end} is in use`);
        hostPort = p;
      }
    }
    let added = 0;
    for (const t of targets) {
      const port: Port = { proto: r.proto, hostIp: t.hostIp, hostPort: t.routed ? 0 : hostPort, containerPort: r.containerPort };
      if (t.routed && [...ep.ports, ...out].some((x) => same(x, port))) continue; // already open; a NAT twin may be new
      out.push(port);
      added++;
      if (!t.routed) hold(port.proto, port.hostPort, { hostIp: port.hostIp, owner: () => `"${r.spec}" in this call` });
    }
    if (!added) throw conflict(`cannot publish "${r.spec}": ${r.containerPort}/${r.proto} of endpoint ${ep.name} is already published`);
  }
  return out;
}

/** planBindings against the live host: its listening sockets and its ephemeral range. */
export async function allocateBindings(state: State, net: Network, ep: Endpoint, requests: PortRequest[], host: HostPorts): Promise<Port[]> {
  return planBindings(state, net, ep, requests, host);
}

/**
 * The endpoint's bindings that `requests` (unpublish SPECs) name: container port and protocol
 * always; host IP and host port when the SPEC gives them (routed bindings have none, so only
 * the family of a given host IP counts for them). A SPEC that names nothing is not found (3).
 */
export function matchBindings(net: Network, ep: Endpoint, requests: readonly PortRequest[]): Port[] {
  const hit = new Set<Port>();
  for (const r of requests) {
    let n = 0;
    for (const p of ep.ports) {
      if (p.proto !== r.proto || p.containerPort !== r.containerPort) continue;
      if (isRouted(net, p)) {
        if (r.hostIp !== null && ipFamily(r.hostIp) !== ipFamily(p.hostIp)) continue;
      } else {
        if (r.hostIp !== null && r.hostIp !== p.hostIp) continue;
        if (r.hostPort !== null && (p.hostPort < r.hostPort || p.hostPort > (r.hostPortEnd ?? r.hostPort))) continue;
      }
      hit.add(p);
      n++;
    }
    if (!n) {
      throw notFound(`no published port of endpoint ${net.name}/${ep.name} matches "${r.spec}"`, `list them with: brnet port ls ${net.name} ${ep.name}`);
    }
  }
  return ep.ports.filter((p) => hit.has(p));
}
