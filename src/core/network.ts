// network create: from a validated spec and the current state to a plan (rm: network-rm.ts).
import { BrnetError, anotherInstance, conflict } from '../errors.ts';
import { ownerOf, parseMark } from '../net/marks.ts';
import { bridgeUpSteps } from '../net/bridge.ts';
import type { HostView } from '../net/host.ts';
import {
  type Cidr,
  DEFAULT_POOLS,
  type Family,
  allocateSubnet,
  cidrOf,
  firstHost,
  formatCidr,
  formatIp,
  overlaps,
  parseCidr,
  parseIp,
  ulaPool,
} from '../net/ipam.ts';
import { defaultBridgeName, newNetworkId, stableMac } from '../net/names.ts';
import type { FamilyConfig, Network, State } from '../state/schema.ts';
import { type CreateFlags, type FamilySpec, type NetworkSpec, parseCreate } from './network-spec.ts';
import type { Host } from './host.ts';
import type { Operation, Plan } from './runner.ts';

/** Everything a new subnet must not overlap: other networks, host addresses and routes. */
function usedPrefixes(state: State, host: HostView, family: Family, exceptDev: string | null): { cidr: Cidr; what: string }[] {
  const used: { cidr: Cidr; what: string }[] = [];
  for (const n of state.networks) {
    const fc = family === 4 ? n.ipv4 : n.ipv6;
    if (fc) used.push({ cidr: parseCidr(fc.subnet), what: `network ${n.name} (${fc.subnet})` });
  }
  for (const a of host.addrs) {
    // Addresses on lo count too: the kernel delivers them locally, whatever a bridge says.
    if (a.family !== family || a.dev === exceptDev) continue;
    const ip = parseIp(a.local);
    if (ip) used.push({ cidr: cidrOf(ip, a.prefixlen), what: `address ${formatIp(ip)}/${a.prefixlen}${a.dev ? ` on ${a.dev}` : ''}` });
  }
  for (const r of host.routes) {
    if (r.dev === exceptDev) continue;
    const [addr = '', len] = r.dst.split('/');
    const ip = parseIp(addr);
    if (!ip || ip.family !== family) continue;
    const prefix = len === undefined ? (family === 4 ? 32 : 128) : Number(len);
    used.push({ cidr: cidrOf(ip, prefix), what: `route ${formatIp(ip)}/${prefix}${r.dev ? ` on ${r.dev}` : ''}` });
  }
  return used;
}

function familyConfig(
  spec: FamilySpec,
  family: Family,
  state: State,
  host: HostView,
  exceptDev: string | null,
  isolated: boolean,
  machineId: () => string,
): FamilyConfig {
  const used = usedPrefixes(state, host, family, exceptDev);
  let subnet = spec.subnet;
  let allocated = false;
  if (subnet) {
    const clash = used.find((u) => overlaps(u.cidr, subnet as Cidr));
    if (clash) throw conflict(`subnet ${formatCidr(subnet)} overlaps ${clash.what}`);
  } else {
    const pools = family === 4 ? (state.config.defaultAddressPools ?? DEFAULT_POOLS) : [ulaPool(machineId())];
    subnet = allocateSubnet(pools.filter((p) => (p.base.includes(':') ? 6 : 4) === family), family, used.map((u) => u.cidr));
    if (!subnet) {
      throw conflict(`no free IPv${family} subnet left in the address pools`, 'give one with --subnet, or add pools: brnet config set default-address-pools …');
    }
    allocated = true;
  }
  // An isolated network has no address on the bridge and so no gateway to hand out.
  const gateway = isolated ? null : formatIp(spec.gateway ?? firstHost(subnet));
  const aux: Record<string, string> = {};
  for (const [k, ip] of Object.entries(spec.aux)) aux[k] = formatIp(ip);
  return {
    subnet: formatCidr(subnet),
    gateway,
    ipRange: spec.ipRange ? formatCidr(spec.ipRange) : null,
    auxAddresses: aux,
    allocated,
  };
}

function buildNetwork(spec: NetworkSpec, state: State, host: HostView, machineId: () => string): Network {
  const id = newNetworkId();
  const bridge = spec.bridgeName ?? defaultBridgeName(id);
  const owner = state.networks.find((n) => n.bridge === bridge);
  if (owner) throw conflict(`bridge ${bridge} is already used by network ${owner.name}`);
  const link = host.links.get(bridge);
  if (link && link.kind !== 'bridge') {
    throw conflict(`device ${bridge} exists and is not a bridge`, 'choose another --bridge-name');
  }
  // A bridge carrying this instance's mark is a leftover of an interrupted call: it is brnet's
  // to take back. Another instance's is not brnet's to adopt either.
  const whose = link ? ownerOf(link.alias, state.instance) : 'none';
  if (whose === 'foreign') throw anotherInstance(parseMark(link?.alias)?.instance ?? '?', [`bridge ${bridge} (${link?.alias})`]);
  const created = !link || whose === 'ours';
  const exceptDev = link ? bridge : null;
  const ipv4 = spec.ipv4 ? familyConfig(spec.ipv4, 4, state, host, exceptDev, spec.gatewayModeIpv4 === 'isolated', machineId) : null;
  const ipv6 = spec.ipv6 ? familyConfig(spec.ipv6, 6, state, host, exceptDev, spec.gatewayModeIpv6 === 'isolated', machineId) : null;
  const keep = link && !created ? host.addrs.filter((a) => a.dev === bridge).map((a) => `${a.local}/${a.prefixlen}`) : [];
  return {
    name: spec.name,
    id,
    bridge,
    bridgeCreated: created,
    keepAddresses: keep,
    bridgeMac: link?.address ? link.address : stableMac(`bridge:${id}`),
    created: new Date().toISOString(),
    ipv4,
    ipv6,
    internal: spec.internal,
    icc: spec.icc,
    masquerade: spec.masquerade,
    mtu: spec.mtu,
    gatewayModeIpv4: spec.gatewayModeIpv4,
    gatewayModeIpv6: spec.gatewayModeIpv6,
    inhibitIpv4: spec.inhibitIpv4,
    hostBindingIp: spec.hostBindingIp,
    snatIpv4: spec.snatIpv4,
    snatIpv6: spec.snatIpv6,
    ifacePrefix: spec.ifacePrefix,
    trustedInterfaces: spec.trustedInterfaces,
    labels: spec.labels,
    options: spec.options,
    endpoints: [],
  };
}

/** Does an existing network already look like what `spec` asks for (for --if-not-exists)? */
function matchesSpec(n: Network, spec: NetworkSpec): boolean {
  const fam = (fc: FamilyConfig | null, fs: FamilySpec | null) => {
    if (!fc || !fs) return fc === null && fs === null;
    if (fs.subnet && formatCidr(fs.subnet) !== fc.subnet) return false;
    if (fs.gateway && formatIp(fs.gateway) !== fc.gateway) return false;
    if (fs.ipRange && formatCidr(fs.ipRange) !== fc.ipRange) return false;
    return true;
  };
  return (
    fam(n.ipv4, spec.ipv4) &&
    fam(n.ipv6, spec.ipv6) &&
    n.internal === spec.internal &&
    n.icc === spec.icc &&
    n.masquerade === spec.masquerade &&
    n.mtu === spec.mtu &&
    (spec.bridgeName === null || spec.bridgeName === n.bridge) &&
    n.gatewayModeIpv4 === spec.gatewayModeIpv4 &&
    n.gatewayModeIpv6 === spec.gatewayModeIpv6 &&
    n.inhibitIpv4 === spec.inhibitIpv4 &&
    n.hostBindingIp === spec.hostBindingIp &&
    n.snatIpv4 === spec.snatIpv4 &&
    n.snatIpv6 === spec.snatIpv6 &&
    n.ifacePrefix === spec.ifacePrefix
  );
}

export interface Created {
  network: Network;
  created: boolean;
}

export function createNetwork(name: string, flags: CreateFlags, ifNotExists: boolean): Operation<Created> {
  const spec = parseCreate(name, flags); // bad input fails here, before any lock or change
  return { what: `create network ${name}`, plan: async (state, live: Host): Promise<Plan<Created>> => {
    const existing = state.networks.find((n) => n.name === name);
    if (existing) {
      if (ifNotExists && matchesSpec(existing, spec)) return { state: null, steps: [], result: { network: existing, created: false } };
      throw conflict(
        `network ${name} already exists${ifNotExists ? ' with other settings' : ''}`,
        ifNotExists ? `inspect it with: brnet network inspect ${name}` : 'use --if-not-exists in scripts',
      );
    }
    // Adopting an existing bridge needs its addresses (a netlink dump); a new bridge only needs
    // the prefixes to stay clear of, from /proc.
    const adopting = spec.bridgeName !== null && live.links().links.has(spec.bridgeName);
    let host = adopting ? await live.addresses() : live.prefixes(spec.ipv6 !== null);
    let net: Network;
    try {
      net = buildNetwork(spec, state, host, live.machineId);
    } catch (e) {
      // /proc knows IPv4 addresses only as /32s without their device: a refusal is confirmed
      // with the full view, whose message names the address's prefix and device.
      if (adopting || !(e instanceof BrnetError) || e.code !== 'CONFLICT') throw e;
      host = await live.addresses();
      net = buildNetwork(spec, state, host, live.machineId);
    }
    const next: State = { ...state, networks: [...state.networks, net] };
    // The rules name the bridge: it exists first.
    return { state: next, steps: bridgeUpSteps(net, host, state.config, state.instance), firewall: 'after', result: { network: net, created: true } };
  } };
}
