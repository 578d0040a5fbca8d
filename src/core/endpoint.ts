// endpoint add / rm: from validated flags and the state to a plan. An endpoint is a veth pair
// joining a network namespace to a network's bridge, with addresses from the network's IPAM.
//
// add: validate everything (flags, then against the state, then against the namespace, read
// with one process) before the first change; the plan is
//   [ip netns add] + firewall (per-endpoint rules) + host ip -batch + namespace ip -batch
//   [+ conntrack for published ports], then the state write.
// rm: see endpoint-rm.ts.
import { conflict, invalid } from '../errors.ts';
import { type Family, type Ip, allocateAddress, contains, formatIp, parseCidr, parseIp, reservedAddresses } from '../net/ipam.ts';
import { checkIfname, checkObjectName, parseMac, stableMac } from '../net/names.ts';
import { type NetnsRef, type NetnsView, parseNetns, requireNetns } from '../net/netns.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { freeVethName, nsConfigStep, vethAddStep } from '../net/veth.ts';
import { parseMark, randomHex } from '../net/marks.ts';
import { identityNow } from './identity.ts';
import { type RouteOwner, defaultRouteOwners, membersIn, nextSeq, routeFamilies } from './default-routes.ts';
import { findNetwork } from './lookup.ts';
import type { Operation, Plan } from './runner.ts';
import type { Step } from '../plan/steps.ts';

/** Options as commander hands them over. */
export interface AddFlags {
  netns: string;
  createNetns?: boolean;
  ip?: string;
  ip6?: string;
  mac?: string;
  ifname?: string;
  defaultRoute?: boolean; // false with --no-default-route
  publish?: string[];
}

export interface AddSpec {
  network: string;
  name: string;
  netns: NetnsRef;
  createNetns: boolean;
  ip: Ip | null;
  ip6: Ip | null;
  mac: string | null;
  ifname: string | null;
  defaultRoute: boolean;
  publish: string[];
}

function parseAddress(flag: '--ip' | '--ip6', s: string | undefined): Ip | null {
  if (s === undefined) return null;
  const family: Family = flag === '--ip' ? 4 : 6;
  const ip = parseIp(s);
  if (!ip) throw invalid(`invalid ${flag} "${s}": not an IPv${family} address`);
  if (ip.family !== family) {
    throw invalid(`invalid ${flag} "${s}": an IPv${ip.family} address`, family === 4 ? 'give IPv6 addresses with --ip6' : 'give IPv4 addresses with --ip');
  }
  return ip;
}

/** Pure: every flag checked on its own, before the state is even read. */
export function parseAdd(network: string, name: string, flags: AddFlags): AddSpec {
  checkObjectName('endpoint', name);
  if (flags.ifname !== undefined) checkIfname('interface name', flags.ifname);
  return {
    network,
    name,
    netns: parseNetns(flags.netns),
    createNetns: Boolean(flags.createNetns),
    ip: parseAddress('--ip', flags.ip),
    ip6: parseAddress('--ip6', flags.ip6),
    mac: flags.mac === undefined ? null : parseMac(flags.mac),
    ifname: flags.ifname ?? null,
    defaultRoute: flags.defaultRoute !== false,
    publish: flags.publish ?? [],
  };
}

/**
 * The endpoint's address in one family, "ADDR/PREFIX", or null when the network lacks that
 * family. A requested address must lie in the subnet (and the ip-range, if any) and be free:
 * not the gateway, an aux address, or another endpoint's.
 */
export function assignAddress(n: Network, family: Family, requested: Ip | null): string | null {
  const fc = family === 4 ? n.ipv4 : n.ipv6;
  const flag = family === 4 ? '--ip' : '--ip6';
  if (!fc) {
    if (requested) throw invalid(`network ${n.name} has no IPv${family}: ${flag} cannot be used`);
    return null;
  }
  const subnet = parseCidr(fc.subnet);
  const range = fc.ipRange ? parseCidr(fc.ipRange) : null;
  const holders = new Map<bigint, string>();
  const hold = (addr: string | null, who: string) => {
    const ip = addr ? parseIp(addr.split('/')[0] ?? '') : null;
    if (ip && ip.family === family) holders.set(ip.value, who);
  };
  hold(fc.gateway, `the gateway of network ${n.name}`);
  for (const [k, v] of Object.entries(fc.auxAddresses)) hold(v, `reserved as aux address ${k}`);
  for (const e of n.endpoints) hold(family === 4 ? e.ipv4 : e.ipv6, `used by endpoint ${e.name}`);
  let ip = requested;
  if (ip) {
    const text = formatIp(ip);
    if (!contains(subnet, ip)) throw invalid(`${flag} ${text} is outside the subnet ${fc.subnet} of network ${n.name}`);
    if (range && !contains(range, ip)) throw invalid(`${flag} ${text} is outside the ip-range ${fc.ipRange} of network ${n.name}`);
    if (reservedAddresses(subnet).includes(ip.value)) {
      throw invalid(`${flag} ${text} cannot be used: it is the ${family === 4 && ip.value !== subnet.base ? 'broadcast' : 'network'} address of ${fc.subnet}`);
    }
    const who = holders.get(ip.value);
    if (who) throw conflict(`address ${text} is already in use: ${who}`, `leave out ${flag} to get a free address`);
  } else {
    ip = allocateAddress(subnet, range, new Set(holders.keys()));
    if (!ip) throw conflict(`no free IPv${family} address left in ${fc.ipRange ?? fc.subnet} of network ${n.name}`);
  }
  return `${formatIp(ip)}/${subnet.prefix}`;
}

/** `--ifname`, checked against the namespace, or the lowest free `<prefix>N`. */
export function chooseIfname(prefix: string, requested: string | null, links: string[], netns: string): string {
  if (requested) {
    if (links.includes(requested)) throw conflict(`interface ${requested} already exists in namespace ${netns}`, 'choose another --ifname');
    return requested;
  }
  for (let i = 0; ; i++) {
    const name = `${prefix}${i}`;
    if (Buffer.byteLength(name) > 15) throw conflict(`no free interface name ${prefix}N left in namespace ${netns}`, 'give one with --ifname');
    if (!links.includes(name)) return name;
  }
}

/**
 * Default routes: one per family per namespace, carried by the first endpoint attached that
 * wants one (see defaultRouteOwners). A default route in the namespace that no brnet endpoint
 * carries is the user's: brnet does not replace it, and says so before changing anything.
 */
export function planDefaultRoutes(state: State, n: Network, ep: Endpoint, view: NetnsView): { defaultRoute: boolean; routes: RouteOwner[] } {
  if (!ep.defaultRoute) return { defaultRoute: false, routes: [] };
  const members = membersIn(state, ep.netnsPath);
  const owned = defaultRouteOwners(members).map((o) => o.family);
  const wanted = routeFamilies(n, ep).filter((f) => !owned.includes(f));
  const foreign = view.defaultRoutes.find((r) => wanted.includes(r.family));
  if (foreign) {
    const via = [foreign.gateway && `via ${foreign.gateway}`, foreign.dev && `dev ${foreign.dev}`].filter(Boolean).join(' ');
    throw conflict(
      `namespace ${ep.netns} already has an IPv${foreign.family} default route${via ? ` (${via})` : ''} that brnet did not add`,
      'add the endpoint with --no-default-route, or delete that route first',
    );
  }
  const mine = { ...ep, defaultRoute: wanted.length > 0 };
  const routes = defaultRouteOwners([...members, { network: n, endpoint: mine }]).filter((o) => o.endpoint === mine);
  return { defaultRoute: mine.defaultRoute, routes };
}

export interface Added {
  network: Network;
  endpoint: Endpoint;
}

export async function addEndpoint(network: string, name: string, flags: AddFlags): Promise<Operation<Added>> {
  const spec = parseAdd(network, name, flags);
  // Port specs are parsed before the lock too; the module loads only when -p is given.
  const portMod = spec.publish.length ? await import('./port.ts') : null;
  const requests = portMod ? spec.publish.flatMap((s) => portMod.parsePortSpec(s)) : [];
  const listening = portMod?.prefetchListeners();
  return { what: `add endpoint ${network}/${name}`, plan: async (state, host): Promise<Plan<Added>> => {
    await listening;
    const net = findNetwork(state, network);
    if (net.endpoints.some((e) => e.name === name)) {
      throw conflict(`endpoint ${name} already exists in network ${net.name}`, `remove it first: brnet endpoint rm ${net.name} ${name}`);
    }
    const ipv4 = assignAddress(net, 4, spec.ip);
    const ipv6 = assignAddress(net, 6, spec.ip6);
    // Derived, not random: re-adding the same endpoint (or `restore` re-creating it) gives the
    // same MAC, so neighbours' ARP/NDP caches for its address stay right without the
    // unsolicited ARP/NA the reference driver sends after picking a random one.
    const mac = spec.mac ?? stableMac(`endpoint:${net.id}:${name}`);
    const macUser = net.endpoints.find((e) => e.mac === mac);
    if (macUser || mac === net.bridgeMac) {
      throw conflict(`MAC address ${mac} is already used by ${macUser ? `endpoint ${macUser.name}` : `bridge ${net.bridge}`} in network ${net.name}`);
    }

    const ref = spec.netns;
    const members = membersIn(state, ref.path);
    const twin = members.find((m) => m.network === net);
    if (twin) throw conflict(`namespace ${ref.spec} is already attached to network ${net.name} as endpoint ${twin.endpoint.name}`);
    const status = host.netnsStatus(ref.path);
    const createNetns = status === 'missing' && spec.createNetns && ref.name !== null ? ref.name : null;
    if (!createNetns) requireNetns(ref, status);
    // A namespace brnet is about to create holds nothing but lo: no need to look inside.
    const view: NetnsView = createNetns ? { links: ['lo'], aliases: {}, defaultRoutes: [] } : await host.netns(ref.path);
    // A namespace whose loopback carries this instance's mark is one brnet created (for
    // another endpoint, or by a call that was killed before it could write the state): it is
    // brnet's to delete with its last endpoint, whatever --create-netns says.
    const lo = parseMark(view.aliases.lo);
    const ownToken = lo && (lo.instance === null || lo.instance === state.instance) ? /^netns:([0-9a-f]{8})$/.exec(lo.what)?.[1] ?? null : null;
    const token = createNetns ? randomHex() : ownToken;

    const ep: Endpoint = {
      name,
      netns: ref.spec,
      netnsPath: ref.path,
      // "brnet created it" belongs to the namespace: an endpoint joining a namespace brnet
      // created inherits it, so whichever endpoint leaves last deletes the namespace.
      netnsCreated: token !== null,
      // Filled in for a namespace being created by the step that creates it.
      netnsIdentity: createNetns ? { dev: 0, ino: 0, start: null, token } : identityNow({ netns: ref.spec, netnsPath: ref.path }, host, token),
      ifname: chooseIfname(net.ifacePrefix, spec.ifname, view.links, ref.spec),
      hostIfname: freeVethName((n) => host.links().links.has(n)),
      mac,
      ipv4,
      ipv6,
      defaultRoute: spec.defaultRoute,
      created: new Date().toISOString(),
      seq: nextSeq(state),
      ports: [],
      links: [],
    };
    const { defaultRoute, routes } = planDefaultRoutes(state, net, ep, view);
    ep.defaultRoute = defaultRoute;
    if (portMod) ep.ports = await portMod.allocateBindings(state, net, ep, requests, host);

    const nextNet: Network = { ...net, endpoints: [...net.endpoints, ep] };
    const next: State = { ...state, networks: state.networks.map((n) => (n === net ? nextNet : n)) };
    // Rules first (the default): the direct-access drops for the address are in place before it answers.
    return {
      state: next,
      steps: [vethAddStep(nextNet, ep, createNetns, state.instance), nsConfigStep(nextNet, ep, routes, state.instance)],
      ...(createNetns && token ? { pendingNetns: [{ name: createNetns, token }] } : {}),
      afterFirewall: portMod && ep.ports.length ? [portMod.conntrackStep(nextNet, ep, ep.ports)] : [],
      ...(portMod && ep.ports.length ? { warnings: portMod.foreignHostIpWarnings(ep.ports, host) } : {}),
      result: { network: nextNet, endpoint: ep },
    };
  } };
}
