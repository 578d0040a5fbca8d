// The state file is the desired state: enough to rebuild every bridge, address, route and
// rule from nothing (`brnet restore`). Every read is checked against these shapes
// (src/validate/shape.ts says why they are not zod's).
import * as z from '../validate/shape.ts';

export const STATE_VERSION = 1;

export const GatewayMode = z.oneOf(['nat', 'nat-unprotected', 'routed', 'isolated']);
export type GatewayMode = z.Infer<typeof GatewayMode>;

const Proto = z.oneOf(['tcp', 'udp', 'sctp']);

export const PortSchema = z.object({
  proto: Proto,
  hostIp: z.string, // "0.0.0.0", "::" or one address
  hostPort: z.number,
  containerPort: z.number,
});
export type Port = z.Infer<typeof PortSchema>;

export const EndpointSchema = z.object({
  name: z.string,
  netns: z.string, // as the user gave it
  netnsPath: z.string, // what brnet opens: /run/netns/NAME, a path, or /proc/PID/ns/net
  netnsCreated: z.boolean, // brnet created the named namespace and deletes it with the last endpoint
  ifname: z.string,
  hostIfname: z.string,
  mac: z.string,
  ipv4: z.nullable(z.string), // "10.1.0.2/24"
  ipv6: z.nullable(z.string),
  defaultRoute: z.boolean,
  created: z.string,
  ports: z.array(PortSchema),
});
export type Endpoint = z.Infer<typeof EndpointSchema>;

const FamilyConfig = z.object({
  subnet: z.string,
  gateway: z.nullable(z.string),
  ipRange: z.nullable(z.string),
  auxAddresses: z.record(z.string),
  /** The subnet was chosen by brnet; shown in inspect, not otherwise special. */
  allocated: z.boolean,
});
export type FamilyConfig = z.Infer<typeof FamilyConfig>;

export const NetworkSchema = z.object({
  name: z.string,
  id: z.string,
  bridge: z.string,
  /** brnet created the bridge device (so `rm` deletes it); false for an adopted bridge. */
  bridgeCreated: z.boolean,
  /** Addresses an adopted bridge already had: never removed by brnet. */
  keepAddresses: z.array(z.string),
  bridgeMac: z.string,
  created: z.string,
  ipv4: z.nullable(FamilyConfig),
  ipv6: z.nullable(FamilyConfig),
  internal: z.boolean,
  icc: z.boolean,
  masquerade: z.boolean,
  mtu: z.nullable(z.number),
  gatewayModeIpv4: GatewayMode,
  gatewayModeIpv6: GatewayMode,
  inhibitIpv4: z.boolean,
  hostBindingIp: z.nullable(z.string),
  snatIpv4: z.nullable(z.string),
  snatIpv6: z.nullable(z.string),
  ifacePrefix: z.string,
  trustedInterfaces: z.array(z.string),
  labels: z.record(z.string),
  options: z.record(z.string),
  endpoints: z.array(EndpointSchema),
});
export type Network = z.Infer<typeof NetworkSchema>;

/** A network's gateway mode for one address family. */
export const modeOf = (n: Network, f: 4 | 6): GatewayMode => (f === 4 ? n.gatewayModeIpv4 : n.gatewayModeIpv6);

export const PoolSchema = z.object({ base: z.string, size: z.number });

export const ConfigSchema = z.object({
  iptables: z.boolean,
  ip6tables: z.boolean,
  ipForward: z.boolean,
  userlandProxy: z.boolean,
  defaultAddressPools: z.nullable(z.array(PoolSchema)),
});
export type Config = z.Infer<typeof ConfigSchema>;

export const StateSchema = z.object({
  version: z.literal(STATE_VERSION),
  config: ConfigSchema,
  networks: z.array(NetworkSchema),
});
export type State = z.Infer<typeof StateSchema>;

export function emptyState(): State {
  return {
    version: STATE_VERSION,
    config: { iptables: true, ip6tables: true, ipForward: true, userlandProxy: false, defaultAddressPools: null },
    networks: [],
  };
}
