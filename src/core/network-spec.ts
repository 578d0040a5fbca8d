// Turns `network create` flags and Docker-style `-o` options into one validated description
// of the wanted network. Pure: no host access, so every rule is unit-tested as data.
import { invalid } from '../errors.ts';
import {
  type Cidr,
  type Family,
  type Ip,
  cidrWithin,
  contains,
  formatCidr,
  formatIp,
  isUnicast,
  isUsableHostAddress,
  parseCidr,
  parseIp,
  validateIpv4Subnet,
  validateIpv6Subnet,
} from '../net/ipam.ts';
import { checkIfname, checkObjectName, parseBool } from '../net/names.ts';
import { GatewayMode } from '../state/schema.ts';

/** Options as commander hands them over; `undefined` means "not given on the command line". */
export interface CreateFlags {
  subnet?: string[];
  gateway?: string[];
  ipRange?: string[];
  auxAddress?: string[];
  ipv6?: boolean;
  ipv4?: boolean; // false with --no-ipv4
  internal?: boolean;
  bridgeName?: string;
  mtu?: string;
  icc?: boolean; // false with --no-icc
  masquerade?: boolean; // false with --no-masquerade
  gatewayModeIpv4?: string;
  gatewayModeIpv6?: string;
  inhibitIpv4?: boolean;
  hostBindingIp?: string;
  snatIpv4?: string;
  snatIpv6?: string;
  ifacePrefix?: string;
  trustedInterface?: string[];
  opt?: string[];
  label?: string[];
}

export interface FamilySpec {
  subnet: Cidr | null; // null: allocate from the pools
  gateway: Ip | null;
  ipRange: Cidr | null;
  aux: Record<string, Ip>;
}

export interface NetworkSpec {
  name: string;
  ipv4: FamilySpec | null;
  ipv6: FamilySpec | null;
  internal: boolean;
  bridgeName: string | null;
  mtu: number | null;
  icc: boolean;
  masquerade: boolean;
  gatewayModeIpv4: GatewayMode;
  gatewayModeIpv6: GatewayMode;
  inhibitIpv4: boolean;
  hostBindingIp: string | null;
  snatIpv4: string | null;
  snatIpv6: string | null;
  ifacePrefix: string;
  trustedInterfaces: string[];
  labels: Record<string, string>;
  options: Record<string, string>;
}

const PREFIX = 'com.docker.network.';
/** Docker's driver option keys, and the flag each one stands for. */
const OPTION_KEYS = [
  'bridge.name',
  'bridge.enable_icc',
  'bridge.enable_ip_masquerade',
  'bridge.host_binding_ipv4',
  'bridge.gateway_mode_ipv4',
  'bridge.gateway_mode_ipv6',
  'bridge.inhibit_ipv4',
  'bridge.trusted_host_interfaces',
  'driver.mtu',
  'container_iface_prefix',
  'host_ipv4',
  'host_ipv6',
  'enable_ipv6',
  'enable_ipv4',
] as const;

function splitKv(what: string, s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw invalid(`invalid ${what} "${s}": expected KEY=VALUE`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/** Accepts the full key or the short form after `com.docker.network.`. */
export function normalizeOptionKey(key: string): string {
  const short = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key.startsWith('.') ? key.slice(1) : key;
  if (!(OPTION_KEYS as readonly string[]).includes(short)) {
    throw invalid(`unknown option "${key}"`, `known options: ${OPTION_KEYS.map((k) => PREFIX + k).join(', ')}`);
  }
  return PREFIX + short;
}

function parseMode(what: string, v: string): GatewayMode {
  if (!(GatewayMode.options as readonly string[]).includes(v)) throw invalid(`invalid ${what} "${v}": use nat, nat-unprotected, routed or isolated`);
  return v as GatewayMode;
}

function ipOf(what: string, s: string, family?: Family): Ip {
  const ip = parseIp(s);
  if (!ip) throw invalid(`invalid ${what} "${s}": not an IP address`);
  if (family && ip.family !== family) throw invalid(`invalid ${what} "${s}": not an IPv${family} address`);
  return ip;
}

/**
 * An address packets go out from (SNAT) or ports are bound on (host binding): unicast, or for
 * a binding also the unspecified address (every address) or a loopback one (this host only).
 */
function unicastOf(what: string, s: string, family?: Family, binding = false): Ip {
  const ip = ipOf(what, s, family);
  const text = formatIp(ip);
  const anyOrLocal = text === '0.0.0.0' || text === '::' || text === '::1' || text.startsWith('127.');
  if (!isUnicast(ip) && !(binding && anyOrLocal)) throw invalid(`invalid ${what} "${s}": not a unicast address`);
  return ip;
}

export function parseMtu(v: string): number {
  if (!/^\d+$/.test(v)) throw invalid(`invalid MTU "${v}": expected a number from 68 to 65535`);
  const n = Number(v);
  if (n < 68 || n > 65535) throw invalid(`invalid MTU "${v}": expected a number from 68 to 65535`);
  return n;
}

export function parseCreate(name: string, flags: CreateFlags): NetworkSpec {
  checkObjectName('network', name);
  // Options first, then explicit flags on top: a flag says more precisely what the user meant.
  const o: Record<string, string> = {};
  for (const kv of flags.opt ?? []) {
    const [k, v] = splitKv('option', kv);
    o[normalizeOptionKey(k)] = v;
  }
  const opt = (k: string) => o[PREFIX + k];
  const bool = (k: string) => (opt(k) === undefined ? undefined : parseBool(PREFIX + k, opt(k) as string));

  const subnets = (flags.subnet ?? []).map((s) => parseCidr(s, 'subnet'));
  const v4subnets = subnets.filter((c) => c.family === 4);
  const v6subnets = subnets.filter((c) => c.family === 6);
  if (v4subnets.length > 1 || v6subnets.length > 1) {
    throw invalid('at most one IPv4 and one IPv6 --subnet can be given');
  }
  // An IPv6 subnet implies --ipv6: asking for one and not getting it would surprise.
  const ipv6 = flags.ipv6 ?? bool('enable_ipv6') ?? v6subnets.length > 0;
  const ipv4 = flags.ipv4 ?? bool('enable_ipv4') ?? true;
  if (!ipv4 && !ipv6) throw invalid('--no-ipv4 requires --ipv6: a network needs at least one address family');
  if (!ipv4 && v4subnets.length) throw invalid('an IPv4 --subnet cannot be combined with --no-ipv4');
  if (!ipv6 && v6subnets.length) throw invalid('an IPv6 --subnet needs --ipv6');
  if (v4subnets[0]) validateIpv4Subnet(v4subnets[0]);
  if (v6subnets[0]) validateIpv6Subnet(v6subnets[0]);

  const internal = flags.internal ?? false;
  const fam = (f: Family, subnet: Cidr | undefined): FamilySpec => ({ subnet: subnet ?? null, gateway: null, ipRange: null, aux: {} });
  const v4 = ipv4 ? fam(4, v4subnets[0]) : null;
  const v6 = ipv6 ? fam(6, v6subnets[0]) : null;
  const forFamily = (what: string, f: Family, explained: string): FamilySpec => {
    const spec = f === 4 ? v4 : v6;
    if (!spec) throw invalid(`${what} is IPv${f}, but the network has no IPv${f}`);
    if (!spec.subnet) throw invalid(`${what} needs an IPv${f} --subnet to be ${explained}`);
    return spec;
  };

  for (const g of flags.gateway ?? []) {
    const ip = ipOf('gateway', g);
    const spec = forFamily(`--gateway ${g}`, ip.family, 'checked against');
    if (spec.gateway) throw invalid(`more than one IPv${ip.family} --gateway`);
    if (!spec.subnet || !isUsableHostAddress(spec.subnet, ip)) {
      throw invalid(`invalid gateway "${g}": not a usable address of subnet ${spec.subnet ? formatCidr(spec.subnet) : ''}`);
    }
    spec.gateway = ip;
  }
  for (const r of flags.ipRange ?? []) {
    const c = parseCidr(r, 'ip-range');
    const spec = forFamily(`--ip-range ${r}`, c.family, 'checked against');
    if (spec.ipRange) throw invalid(`more than one IPv${c.family} --ip-range`);
    if (!spec.subnet || !cidrWithin(c, spec.subnet)) {
      throw invalid(`invalid ip-range "${r}": not inside subnet ${spec.subnet ? formatCidr(spec.subnet) : ''}`);
    }
    spec.ipRange = c;
  }
  for (const a of flags.auxAddress ?? []) {
    const [k, v] = splitKv('aux-address', a);
    const ip = ipOf(`aux-address ${k}`, v);
    const spec = forFamily(`--aux-address ${a}`, ip.family, 'checked against');
    if (!spec.subnet || !contains(spec.subnet, ip)) {
      throw invalid(`invalid aux-address "${a}": not inside subnet ${spec.subnet ? formatCidr(spec.subnet) : ''}`);
    }
    if (spec.aux[k]) throw invalid(`aux-address name "${k}" given twice`);
    spec.aux[k] = ip;
  }

  const bridgeName = flags.bridgeName ?? opt('bridge.name') ?? null;
  if (bridgeName !== null) checkIfname('bridge name', bridgeName);

  const mtuText = flags.mtu ?? opt('driver.mtu');
  const mtu = mtuText === undefined ? null : parseMtu(mtuText);
  if (mtu !== null && ipv6 && mtu < 1280) throw invalid(`invalid MTU "${mtu}": IPv6 needs at least 1280`);

  const gatewayModeIpv4 = parseMode('gateway mode', flags.gatewayModeIpv4 ?? opt('bridge.gateway_mode_ipv4') ?? 'nat');
  const gatewayModeIpv6 = parseMode('gateway mode', flags.gatewayModeIpv6 ?? opt('bridge.gateway_mode_ipv6') ?? 'nat');
  for (const m of [gatewayModeIpv4, gatewayModeIpv6]) {
    if (m === 'isolated' && !internal) throw invalid('gateway mode "isolated" can only be used with --internal');
  }

  const hostBinding = flags.hostBindingIp ?? opt('bridge.host_binding_ipv4') ?? null;
  const hostBindingIp = hostBinding === null ? null : formatIp(unicastOf('host binding IP', hostBinding, undefined, true));
  const snat4 = flags.snatIpv4 ?? opt('host_ipv4') ?? null;
  const snat6 = flags.snatIpv6 ?? opt('host_ipv6') ?? null;
  const snatIpv4 = snat4 === null ? null : formatIp(unicastOf('SNAT IPv4 address', snat4, 4));
  const snatIpv6 = snat6 === null ? null : formatIp(unicastOf('SNAT IPv6 address', snat6, 6));

  const ifacePrefix = flags.ifacePrefix ?? opt('container_iface_prefix') ?? 'eth';
  checkIfname('interface prefix', ifacePrefix, 13);

  const trusted = [
    ...(opt('bridge.trusted_host_interfaces')?.split(':').filter(Boolean) ?? []),
    ...(flags.trustedInterface ?? []),
  ];
  for (const t of trusted) checkIfname('trusted interface', t);

  const labels: Record<string, string> = {};
  for (const l of flags.label ?? []) {
    const [k, v] = splitKv('label', l);
    labels[k] = v;
  }

  return {
    name,
    ipv4: v4,
    ipv6: v6,
    internal,
    bridgeName,
    mtu,
    icc: flags.icc ?? bool('bridge.enable_icc') ?? true,
    masquerade: flags.masquerade ?? bool('bridge.enable_ip_masquerade') ?? true,
    gatewayModeIpv4,
    gatewayModeIpv6,
    inhibitIpv4: flags.inhibitIpv4 ?? bool('bridge.inhibit_ipv4') ?? false,
    hostBindingIp,
    snatIpv4,
    snatIpv6,
    ifacePrefix,
    trustedInterfaces: [...new Set(trusted)],
    labels,
    options: o,
  };
}
