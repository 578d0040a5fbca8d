// What a planner may know of the host, handed to it by the runner: a planner is then a
// function of (state, request, host), and a test can plan any operation against a host it
// describes (test/unit/plans.test.ts), without root. The live host reads each fact when first
// asked and keeps it for the rest of the plan; every read is one of the cheap views of
// net/host.ts, net/netns.ts and net/ports.ts.
import type { KernelRules } from '../firewall/iptables.ts';
import type { FirewalldView } from '../firewall/firewalld.ts';
import type { NftKernel } from '../firewall/nftables.ts';
import type { Family } from '../firewall/rules.ts';
import { type HostView, bridgePorts, linkAlias, linkMaster, linkNames, linksView, readBridgeAddresses, readHostAddresses, readHostPrefixes } from '../net/host.ts';
import { type NetnsStat, type NetnsStatus, type NetnsView, processStart, readNetns, statNetns } from '../net/netns.ts';
import { type Pending, migrationNoted, readPending } from '../state/journal.ts';
import { type EphemeralRange, type Listener, readEphemeralRange, readListeners } from '../net/ports.ts';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readSysctl } from '../net/sysctl.ts';

export interface Host {
  /** Links only, from sysfs. */
  links(): HostView;
  /** The name of every link. */
  linkNames(): string[];
  /** A link's bridge: null when it has none, undefined when there is no such link. */
  linkMaster(name: string): string | null | undefined;
  linkAlias(name: string): string | null;
  /** The ports of a bridge; null when there is no such bridge. */
  bridgePorts(bridge: string): Set<string> | null;
  /** Prefixes to keep clear of, from /proc (IPv4 addresses as /32s, without devices). */
  prefixes(v6: boolean): HostView;
  /** Global addresses with their devices, and routes (one `ip` process). */
  addresses(): Promise<HostView>;
  /** The global addresses of bridges only. */
  bridgeAddresses(): Promise<HostView>;
  netnsStatus(path: string): NetnsStatus;
  /** dev and ino of a namespace file; null when there is none. */
  nsIdentity(path: string): { dev: number; ino: number } | null;
  /** dev and ino of any file, from one stat; null when there is none. */
  nsStat(path: string): { dev: number; ino: number } | null;
  /** A process's start time (see net/netns.ts); null when there is no such process. */
  processStart(pid: string): string | null;
  /** Namespaces noted by calls that were creating them (state/journal.ts). */
  pendingNetns(): readonly Pending[];
  /** A change of firewall backend was started and not recorded (state/journal.ts). */
  migrating(): boolean;
  /** Interfaces and default routes inside a namespace. */
  netns(path: string): Promise<NetnsView>;
  /** Listening TCP and bound UDP sockets (/proc/net). */
  listeners(): readonly Listener[];
  /** The ephemeral port range, less the reserved ports. */
  ephemeral(): EphemeralRange;
  /** Can sockets be bound on IPv6 addresses here (`::` for the userland proxy)? */
  hostIpv6(): boolean;
  /** What brnet's IPv6 pool is derived from. */
  machineId(): string;
  /** brnet's rules and built-in jumps as the kernel has them (for the first and last network). */
  firewall(f: Family): Promise<KernelRules>;
  /** brnet's nftables tables; null when there is no `nft` to ask. */
  nftables(): Promise<NftKernel | null>;
  /** What firewalld holds of brnet's; null when firewalld does not run. */
  firewalld(): Promise<FirewalldView | null>;
}

const once = <T>(read: () => T): (() => T) => {
  let value: { v: T } | undefined;
  return () => (value ??= { v: read() }).v;
};

export function liveHost(stateDir?: string): Host {
  const prefixes = new Map<boolean, HostView>();
  const namespaces = new Map<string, Promise<NetnsView>>();
  const rules = new Map<Family, Promise<KernelRules>>();
  const addresses = once(readHostAddresses);
  const bridgeAddresses = once(readBridgeAddresses);
  const stats = new Map<string, NetnsStat>();
  const plain = new Map<string, { dev: number; ino: number } | null>();
  const nsStat = (path: string) => stats.get(path) ?? stats.set(path, statNetns(path)).get(path)!;
  return {
    links: once(linksView),
    linkNames: once(linkNames),
    linkMaster,
    linkAlias,
    bridgePorts,
    prefixes: (v6) => prefixes.get(v6) ?? prefixes.set(v6, readHostPrefixes(v6)).get(v6)!,
    addresses,
    bridgeAddresses,
    // Each namespace file is looked at once per call (stat and statfs), whoever asks.
    netnsStatus: (path) => nsStat(path).status,
    nsIdentity: (path) => (nsStat(path).status === 'ok' ? nsStat(path).id : null),
    nsStat: (path) => {
      if (!plain.has(path)) {
        try {
          const st = statSync(path);
          plain.set(path, { dev: st.dev, ino: st.ino });
        } catch {
          plain.set(path, null);
        }
      }
      return plain.get(path) ?? null;
    },
    processStart,
    pendingNetns: once(() => (stateDir ? readPending(stateDir) : [])),
    migrating: once(() => (stateDir ? migrationNoted(stateDir) : false)),
    netns: (path) => namespaces.get(path) ?? namespaces.set(path, readNetns(path)).get(path)!,
    listeners: once(readListeners),
    ephemeral: once(readEphemeralRange),
    hostIpv6: once(() => existsSync('/proc/net/if_inet6') && readSysctl('net/ipv6/conf/all/disable_ipv6') !== '1'),
    machineId: once(readMachineId),
    firewall: (f) => rules.get(f) ?? rules.set(f, import('../firewall/iptables.ts').then((m) => m.readKernelRules(f))).get(f)!,
    nftables: once(() => import('../firewall/nftables.ts').then((m) => m.readNft())),
    firewalld: once(() => import('../firewall/firewalld.ts').then((m) => m.readFirewalld())),
  };
}

function readMachineId(): string {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (id) return id;
    } catch {}
  }
  return 'brnet-no-machine-id';
}
