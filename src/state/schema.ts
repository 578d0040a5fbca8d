// The state file is the desired state: enough to rebuild every bridge, address, route and
// rule from nothing (`brnet restore`). Every read is checked against these shapes
// (src/validate/shape.ts says why they are not zod's).
import * as z from '../validate/shape.ts';
import * as v from '../validate/values.ts';
import { isInstanceId } from '../net/marks.ts';

// Every value that reaches a command line is checked for what it may be (validate/values.ts):
// a state file edited by hand, or planted, is input like any other.
const objectName = z.text('a name of 1-64 characters from A-Z a-z 0-9 _ . -', v.isObjectName);
const ifname = z.text('an interface name', (s) => v.isIfname(s));
const ip = z.text('an IP address', v.isIpText);
const cidr = z.text('an address with a prefix length', v.isCidrText);
const mac = z.text('a MAC address', v.isMac);
const port = z.int(0, 65535);
const instance = z.text('an instance id of 8 hex digits', isInstanceId);
const count = z.int(0, Number.MAX_SAFE_INTEGER);

/**
 * What proves that a namespace is the one the endpoint was attached to. The kernel reuses a
 * freed namespace's inode number, so dev and ino only rule namespaces out; what proves it is
 * the process start time (pid:), the token on the loopback of a namespace brnet created, or
 * else the endpoint's own marked veth being alive (see core/identity.ts).
 */
export const NetnsIdentitySchema = z.object({
  dev: count,
  ino: count,
  /** pid: only: field 22 of /proc/PID/stat, in clock ticks since boot. */
  start: z.nullable(z.text('a process start time', (s) => /^\d{1,20}$/.test(s))),
  /** Namespaces brnet created only: the token in the mark on their loopback. */
  token: z.nullable(z.text('a namespace token of 8 hex digits', isInstanceId)),
});
export type NetnsIdentity = z.Infer<typeof NetnsIdentitySchema>;

export const STATE_VERSION = 1;

export const GatewayMode = z.oneOf(['nat', 'nat-unprotected', 'routed', 'isolated']);
export type GatewayMode = z.Infer<typeof GatewayMode>;

export const Proto = z.oneOf(['tcp', 'udp', 'sctp']);

const PortFields = z.object({
  proto: Proto,
  hostIp: ip, // "0.0.0.0", "::" or one address
  hostPort: port,
  containerPort: port,
});
/**
 * rootlesskit: the id of the binding's exposure on the real host (net/rootlesskit.ts); proxy:
 * its userland proxy's pid and start time (core/proxy-ports.ts). Each is absent elsewhere.
 */
export type Port = z.Infer<typeof PortFields> & { rootlesskit?: number; proxy?: ProxyRecord };
const rootlesskitId = z.int(0, 2 ** 31 - 1);
const ProxyRecord = z.object({ pid: z.int(1, 2 ** 22), start: z.text('a process start time in clock ticks', (t) => /^\d{1,20}$/.test(t)) });
export type ProxyRecord = z.Infer<typeof ProxyRecord>;
export const PortSchema: z.Shape<Port> = (v) => {
  const p: Port = PortFields(v);
  const extra = v as { rootlesskit?: unknown; proxy?: unknown };
  const field = <T>(name: 'rootlesskit' | 'proxy', shape: z.Shape<T>): T | undefined => {
    if (extra[name] === undefined) return undefined;
    try {
      return shape(extra[name]);
    } catch (e) {
      if (e instanceof z.ShapeError) e.path.unshift(name);
      throw e;
    }
  };
  const id = field('rootlesskit', rootlesskitId);
  if (id !== undefined) p.rootlesskit = id;
  const proxy = field('proxy', ProxyRecord);
  if (proxy !== undefined) p.proxy = proxy;
  return p;
};

/**
 * A legacy link (core/links.ts), kept on the endpoint that opens the connections: it may reach
 * endpoint `to` of the same network on this port, whatever ICC says.
 */
export const LinkSchema = z.object({
  to: objectName,
  proto: Proto,
  port: z.int(1, 65535),
});
export type Link = z.Infer<typeof LinkSchema>;

export const EndpointSchema = z.object({
  name: objectName,
  netns: z.text('a namespace name, path or pid:PID', v.isNetnsSpec), // as the user gave it
  netnsPath: z.text('an absolute namespace path', v.isNetnsPath), // what brnet opens: /run/netns/NAME, a path, or /proc/PID/ns/net
  netnsCreated: z.boolean, // brnet created the named namespace and deletes it with the last endpoint
  /** null: recorded by an older brnet and not proven since (see core/identity.ts). */
  netnsIdentity: z.nullable(NetnsIdentitySchema),
  ifname,
  hostIfname: ifname,
  mac,
  ipv4: z.nullable(cidr), // "10.1.0.2/24"
  ipv6: z.nullable(cidr),
  defaultRoute: z.boolean,
  created: z.string,
  /** Attachment order across the host (1, 2, …): who carries a namespace's default route. */
  seq: z.int(0, Number.MAX_SAFE_INTEGER),
  ports: z.array(PortSchema),
  links: z.array(LinkSchema),
});
export type Endpoint = z.Infer<typeof EndpointSchema>;

const FamilyConfig = z.object({
  subnet: cidr,
  gateway: z.nullable(ip),
  ipRange: z.nullable(cidr),
  auxAddresses: z.record(ip),
  /** The subnet was chosen by brnet; shown in inspect, not otherwise special. */
  allocated: z.boolean,
});
export type FamilyConfig = z.Infer<typeof FamilyConfig>;

const NetworkFields = z.object({
  name: objectName,
  id: z.text('a network id of 64 hex digits', v.isNetworkId),
  bridge: ifname,
  /** brnet created the bridge device (so `rm` deletes it); false for an adopted bridge. */
  bridgeCreated: z.boolean,
  /** Addresses an adopted bridge already had: never removed by brnet. */
  keepAddresses: z.array(cidr),
  bridgeMac: mac,
  created: z.string,
  ipv4: z.nullable(FamilyConfig),
  ipv6: z.nullable(FamilyConfig),
  internal: z.boolean,
  icc: z.boolean,
  masquerade: z.boolean,
  mtu: z.nullable(z.int(68, 65535)),
  gatewayModeIpv4: GatewayMode,
  gatewayModeIpv6: GatewayMode,
  inhibitIpv4: z.boolean,
  hostBindingIp: z.nullable(ip),
  snatIpv4: z.nullable(ip),
  snatIpv6: z.nullable(ip),
  ifacePrefix: z.text('an interface prefix', (s) => v.isIfname(s, 13)),
  trustedInterfaces: z.array(ifname),
  labels: z.record(z.string),
  options: z.record(z.string),
  endpoints: z.array(EndpointSchema),
});

/** Every link names another endpoint of its network, once per port and protocol. */
function linkProblem(n: z.Infer<typeof NetworkFields>): z.Problem | null {
  const names = new Set(n.endpoints.map((e) => e.name));
  for (const [i, e] of n.endpoints.entries()) {
    const seen = new Set<string>();
    for (const [j, l] of e.links.entries()) {
      const at = ['endpoints', i, 'links', j];
      if (l.to === e.name) return { path: [...at, 'to'], problem: `endpoint ${e.name} is linked to itself` };
      if (!names.has(l.to)) return { path: [...at, 'to'], problem: `no endpoint ${l.to} in network ${n.name}` };
      const key = `${l.to} ${l.port}/${l.proto}`;
      if (seen.has(key)) return { path: at, problem: `the link to ${l.to} on ${l.port}/${l.proto} is listed twice` };
      seen.add(key);
    }
  }
  return null;
}

export const NetworkSchema = z.refine(NetworkFields, linkProblem);
export type Network = z.Infer<typeof NetworkSchema>;

/** A network's gateway mode for one address family. */
export const modeOf = (n: Network, f: 4 | 6): GatewayMode => (f === 4 ? n.gatewayModeIpv4 : n.gatewayModeIpv6);

export const PoolSchema = z.object({ base: cidr, size: z.int(0, 128) });

export const FirewallBackend = z.oneOf(['iptables', 'nftables']);
export type FirewallBackend = z.Infer<typeof FirewallBackend>;

export const ConfigSchema = z.object({
  /** Which kernel interface holds brnet's rules (firewall/index.ts). */
  firewallBackend: FirewallBackend,
  iptables: z.boolean,
  ip6tables: z.boolean,
  ipForward: z.boolean,
  userlandProxy: z.boolean,
  defaultAddressPools: z.nullable(z.array(PoolSchema)),
});
export type Config = z.Infer<typeof ConfigSchema>;

/**
 * Sysctls brnet changed ('/'-separated keys, as net/sysctl.ts writes them): the value each had
 * before brnet first changed it and the value brnet set, so that `reset` can put them back
 * (core/sysctl-record.ts). `incomplete`: the state is older than this record, and what brnet
 * changed before it is not in it.
 */
const sysctlValue = z.text('a sysctl value', (s) => /^[0-9\t -]{1,64}$/.test(s));
export const SysctlsSchema = z.object({
  changed: z.keyedRecord('a sysctl key under net/', v.isSysctlKey, z.object({ before: sysctlValue, set: sysctlValue })),
  incomplete: z.boolean,
});
export type Sysctls = z.Infer<typeof SysctlsSchema>;

export const StateSchema = z.object({
  version: z.literal(STATE_VERSION),
  /** Carried in the marks of everything this state dir creates; null until the first change. */
  instance: z.nullable(instance),
  config: ConfigSchema,
  sysctls: SysctlsSchema,
  networks: z.array(NetworkSchema),
});
export type State = z.Infer<typeof StateSchema>;

export function emptyState(): State {
  return {
    version: STATE_VERSION,
    instance: null,
    config: { firewallBackend: 'iptables', iptables: true, ip6tables: true, ipForward: true, userlandProxy: false, defaultAddressPools: null },
    sysctls: { changed: {}, incomplete: false },
    networks: [],
  };
}
