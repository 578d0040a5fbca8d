// The JSON shapes of product.md, built from the state. Field names are a contract.
import type { Endpoint, Link, Network, Port } from '../state/schema.ts';

/**
 * `stale`: the endpoint's namespace is gone or not provably its own (core/identity.ts). A
 * binding carries it only when true, so the shape of every healthy binding stays the seven
 * fields scripts compare; an endpoint always carries it. `proxy`: the binding's userland
 * proxy (`{pid}`), null without one.
 */
export function portView(n: Network, ep: Endpoint, p: Port, stale = false) {
  const proxy = p.proxy ? { pid: p.proxy.pid } : null;
  const view = { network: n.name, endpoint: ep.name, proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, proxy };
  return stale ? { ...view, stale: true as const } : view;
}

/** A legacy link, as the endpoint that opens the connections holds it. */
export const linkView = (l: Link) => ({ to: l.to, proto: l.proto, port: l.port });

export function endpointView(n: Network, ep: Endpoint, stale = false) {
  return {
    name: ep.name,
    network: n.name,
    netns: ep.netns,
    ifname: ep.ifname,
    hostIfname: ep.hostIfname,
    mac: ep.mac,
    ipv4: ep.ipv4,
    ipv6: ep.ipv6,
    defaultRoute: ep.defaultRoute,
    created: ep.created,
    stale,
    ports: ep.ports.map((p) => portView(n, ep, p, stale)),
    links: ep.links.map(linkView),
  };
}

export function networkView(n: Network, stale: ReadonlySet<Endpoint> = new Set()) {
  const fam = (fc: Network['ipv4']) =>
    fc ? { subnet: fc.subnet, gateway: fc.gateway, ipRange: fc.ipRange, auxAddresses: fc.auxAddresses } : null;
  return {
    name: n.name,
    id: n.id,
    bridge: n.bridge,
    created: n.created,
    ipv4: fam(n.ipv4),
    ipv6: fam(n.ipv6),
    internal: n.internal,
    icc: n.icc,
    masquerade: n.masquerade,
    mtu: n.mtu ?? 1500,
    gatewayModeIpv4: n.gatewayModeIpv4,
    gatewayModeIpv6: n.gatewayModeIpv6,
    inhibitIpv4: n.inhibitIpv4,
    hostBindingIp: n.hostBindingIp,
    snatIpv4: n.snatIpv4,
    snatIpv6: n.snatIpv6,
    ifacePrefix: n.ifacePrefix,
    trustedInterfaces: n.trustedInterfaces,
    bridgeCreated: n.bridgeCreated,
    labels: n.labels,
    options: n.options,
    endpoints: n.endpoints.map((e) => endpointView(n, e, stale.has(e))),
  };
}

export function networkFlags(n: Network): string {
  const f: string[] = [];
  if (n.internal) f.push('internal');
  if (!n.icc) f.push('no-icc');
  if (!n.masquerade) f.push('no-masq');
  if (n.ipv4 && n.gatewayModeIpv4 !== 'nat') f.push(`v4:${n.gatewayModeIpv4}`);
  if (n.ipv6 && n.gatewayModeIpv6 !== 'nat') f.push(`v6:${n.gatewayModeIpv6}`);
  if (!n.bridgeCreated) f.push('adopted');
  return f.join(',');
}
