// The kernel side of a network: the bridge device, its addresses and its sysctls.
import type { Step } from '../plan/steps.ts';
import type { Config, Network } from '../state/schema.ts';
import type { HostLink, HostView } from './host.ts';
import { ipBatch, ipBatchStep } from './ipcmd.ts';
import { type SysctlWrites, sysctlStep } from './sysctl.ts';

import { BRIDGE_GROUP, deviceMark, isOwnMark } from './marks.ts';

/**
 * Is the device of that name the bridge brnet made for `n`: its mark (alias) and the MAC brnet
 * gave it? Only then may brnet change or delete it. An adopted bridge is the user's, and brnet
 * only ever adds and removes its own addresses on it.
 */
export function ownsBridge(n: Network, link: Pick<HostLink, 'alias' | 'address'>, instance: string | null): boolean {
  return isOwnMark(link.alias, instance, n.name) && link.address.toLowerCase() === n.bridgeMac.toLowerCase();
}

const gwAddr = (fc: Network['ipv4']) => (fc?.gateway ? `${fc.gateway}/${fc.subnet.split('/')[1]}` : null);

/** The addresses the bridge must carry: the gateways, unless inhibited or isolated. */
export function bridgeAddresses(n: Network): { v4: string | null; v6: string | null } {
  const v4 = n.ipv4 && !n.inhibitIpv4 && n.gatewayModeIpv4 !== 'isolated' ? gwAddr(n.ipv4) : null;
  const v6 = n.ipv6 && n.gatewayModeIpv6 !== 'isolated' ? gwAddr(n.ipv6) : null;
  return { v4, v6 };
}

export function networkSysctls(n: Network, cfg: Config): SysctlWrites {
  const br = n.bridge;
  const w: SysctlWrites = [];
  if (n.ipv6) {
    w.push([`net/ipv6/conf/${br}/disable_ipv6`, n.gatewayModeIpv6 === 'isolated' ? '1' : '0']);
    w.push([`net/ipv6/conf/${br}/accept_ra`, '0']);
    // No DAD for the bridge's link-local address: it starts when the first endpoint brings the
    // carrier up, and while it runs the kernel sends no neighbour solicitation for forwarded
    // packets (no usable source address), so the first IPv6 connection through a published
    // port waited one or two retransmits. The bridge and its MAC are brnet's own.
    w.push([`net/ipv6/conf/${br}/accept_dad`, '0']);
  }
  // Loopback publishing DNATs 127.0.0.1 into the bridge, which the kernel only routes with this;
  // with the userland proxy, loopback is the proxy's, and the bridge routes no 127.0.0.0/8.
  if (n.ipv4 && !n.internal) w.push([`net/ipv4/conf/${br}/route_localnet`, cfg.userlandProxy ? '0' : '1']);
  if (cfg.ipForward && !n.internal) {
    if (n.ipv4) w.push(['net/ipv4/ip_forward', '1']);
    if (n.ipv6) w.push(['net/ipv6/conf/all/forwarding', '1'], ['net/ipv6/conf/default/forwarding', '1']);
  }
  // Traffic between ports of one bridge is switched, not routed: iptables sees it (for the ICC
  // drop and for hairpin DNAT to a sibling) only through br_netfilter.
  if (cfg.iptables && n.ipv4) w.push(['net/bridge/bridge-nf-call-iptables', '1']);
  if (cfg.ip6tables && n.ipv6) w.push(['net/bridge/bridge-nf-call-ip6tables', '1']);
  return w;
}

/** Create (or adopt) the bridge and bring it to the state's description. */
export function bridgeUpSteps(n: Network, host: HostView, cfg: Config, instance: string | null): Step[] {
  const br = n.bridge;
  const link = host.links.get(br);
  const steps: Step[] = [];
  const { v4, v6 } = bridgeAddresses(n);
  if (!link && !n.ipv6) {
    // A new IPv4-only bridge in one batch, its sysctls after: none of them must precede the
    // address or the link going up (the IPv6 ones do: disable_ipv6 before the address,
    // accept_dad before the carrier), so one `ip` process fewer.
    const mtu = n.mtu ? ` mtu ${n.mtu}` : '';
    const lines = [`link add name ${br} address ${n.bridgeMac} group ${BRIDGE_GROUP}${mtu} type bridge`, `link set dev ${br} alias ${deviceMark(instance, n.name)}`];
    if (v4) lines.push(`addr add ${v4} dev ${br}`);
    steps.push(ipBatchStep([...lines, `link set dev ${br} up`], [`link del dev ${br}`]));
    steps.push(sysctlStep(networkSysctls(n, cfg)));
    return steps;
  }
  if (!link) {
    const mtu = n.mtu ? ` mtu ${n.mtu}` : '';
    steps.push(
      ipBatchStep([`link add name ${br} address ${n.bridgeMac} group ${BRIDGE_GROUP}${mtu} type bridge`, `link set dev ${br} alias ${deviceMark(instance, n.name)}`], [`link del dev ${br}`]),
    );
  } else {
    // A bridge brnet made, still under a mark of before instances or of an earlier network
    // of this state (a leftover being taken back), carries this one's mark from now on.
    const mark = deviceMark(instance, n.name);
    if (n.bridgeCreated && link.alias !== mark) steps.push(ipBatchStep([`link set dev ${br} alias ${mark}`], link.alias ? [`link set dev ${br} alias ${link.alias}`] : []));
    // Bridges made before the device group existed join it (see BRIDGE_GROUP).
    if (n.bridgeCreated && link.group !== BRIDGE_GROUP) steps.push(ipBatchStep([`link set dev ${br} group ${BRIDGE_GROUP}`], [`link set dev ${br} group ${link.group}`]));
    if (n.mtu && link.mtu !== n.mtu) steps.push(ipBatchStep([`link set dev ${br} mtu ${n.mtu}`], [`link set dev ${br} mtu ${link.mtu}`]));
  }
  steps.push(sysctlStep(networkSysctls(n, cfg)));
  const have = new Set(host.addrs.filter((a) => a.dev === br).map((a) => `${a.local}/${a.prefixlen}`));
  const add: string[] = [];
  const undo: string[] = [];
  for (const a of [v4, v6]) {
    if (!a || have.has(a)) continue;
    add.push(`addr add ${a} dev ${br}${a.includes(':') ? ' nodad' : ''}`);
    undo.push(`addr del ${a} dev ${br}`);
  }
  if (!link?.up) add.push(`link set dev ${br} up`);
  if (add.length) steps.push(ipBatchStep(add, link ? undo : []));
  return steps;
}

/**
 * Remove the bridge if brnet created it; otherwise only the addresses brnet put on it.
 * Undone by building the bridge again as the state describes it (as `restore` would), so the
 * deletion may run alongside the firewall commit (see removeNetworks).
 */
export function bridgeDownStep(n: Network, host: HostView, cfg: Config, instance: string | null): Step {
  const br = n.bridge;
  const found = host.links.get(br);
  // A device under the bridge's name that brnet cannot prove its own is left alone (the
  // planner has refused, or was told to forget the network with --force).
  const link = found && (!n.bridgeCreated || ownsBridge(n, found, instance)) ? found : undefined;
  const lines: string[] = [];
  const undo: string[] = [];
  const deleted = Boolean(link && n.bridgeCreated);
  if (deleted) lines.push(`link del dev ${br}`);
  else if (link) {
    const { v4, v6 } = bridgeAddresses(n);
    const have = new Set(host.addrs.filter((a) => a.dev === br).map((a) => `${a.local}/${a.prefixlen}`));
    for (const a of [v4, v6]) {
      if (a && have.has(a) && !n.keepAddresses.includes(a)) {
        lines.push(`addr del ${a} dev ${br}`);
        undo.push(`addr add ${a} dev ${br}${a.includes(':') ? ' nodad' : ''}`);
      }
    }
  }
  return {
    show: lines.map((l) => `ip ${l}`),
    do: () => ipBatch(lines),
    async undo() {
      if (!deleted) return ipBatch(undo, null, true);
      if (host.links.has(br)) return; // the deletion did not happen
      for (const step of bridgeUpSteps(n, { links: host.links, addrs: [], routes: [] }, cfg, instance)) await step.do();
    },
  };
}
