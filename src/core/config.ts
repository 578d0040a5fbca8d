// Host-wide settings. Turning iptables/ip6tables off removes every brnet rule of that family
// at once (the "none" firewall driver is simply an empty rule set); turning it on installs them.
// Turning userland-proxy on or off is one operation too: every proxy starts or stops, every
// network's NAT rules change layout (core/proxy-ports.ts, firewall/rules.ts).
import { invalid } from '../errors.ts';
import { bindingText } from '../net/addr-text.ts';
import { parsePortSpec } from '../net/ports.ts';
import { networkSysctls } from '../net/bridge.ts';
import { sysctlStep } from '../net/sysctl.ts';
import { parseCidr, formatCidr } from '../net/ipam.ts';
import { parseBool } from '../net/names.ts';
import type { Config, State } from '../state/schema.ts';
import { emptyState } from '../state/schema.ts';
import type { Host } from './host.ts';
import { isRouted, modeOf } from './lookup.ts';
import { planBindings } from './port-bindings.ts';
import { proxyOnly } from './proxy-ports.ts';
import type { Operation } from './runner.ts';

export const CONFIG_KEYS = ['firewall-backend', 'iptables', 'ip6tables', 'ip-forward', 'userland-proxy', 'default-address-pools'] as const;

export function parsePools(value: string): Config['defaultAddressPools'] {
  if (value === 'default' || value === '') return null;
  return value.split(',').map((item) => {
    const m = /^(.+\/\d+)\/(\d+)$/.exec(item.trim());
    if (!m) throw invalid(`invalid address pool "${item}": expected CIDR/SIZE, e.g. 10.10.0.0/16/24`);
    const base = parseCidr(m[1] as string, 'address pool');
    const size = Number(m[2]);
    if (size < base.prefix || size > (base.family === 4 ? 32 : 128)) {
      throw invalid(`invalid address pool "${item}": size must be between /${base.prefix} and /${base.family === 4 ? 32 : 128}`);
    }
    return { base: formatCidr(base), size };
  });
}

export function applySetting(c: Config, key: string, value: string): Config {
  switch (key) {
    case 'firewall-backend':
      if (value !== 'iptables' && value !== 'nftables') throw invalid(`invalid firewall-backend "${value}": use iptables or nftables`);
      return { ...c, firewallBackend: value };
    case 'iptables':
      return { ...c, iptables: parseBool(key, value) };
    case 'ip6tables':
      return { ...c, ip6tables: parseBool(key, value) };
    case 'ip-forward':
      return { ...c, ipForward: parseBool(key, value) };
    case 'userland-proxy':
      return { ...c, userlandProxy: parseBool(key, value) };
    case 'default-address-pools':
      return { ...c, defaultAddressPools: parsePools(value) };
    default:
      throw invalid(`unknown setting "${key}"`, `settings: ${CONFIG_KEYS.join(', ')}`);
  }
}

export function setConfig(key: string, value: string): Operation<Config> {
  applySetting(emptyState().config, key, value); // bad keys and values fail before the lock
  return {
    what: `set ${key}`,
    plan: async (state, host) => {
      let next: State = { ...state, config: applySetting(state.config, key, value) };
      const moving = next.config.firewallBackend !== state.config.firewallBackend;
      if (next.config.userlandProxy === state.config.userlandProxy) {
        return { state: next, steps: [], result: next.config, ...(moving ? { migration: 'start' as const } : {}) };
      }
      // The proxies follow from the state (core/proxy-ports.ts) and the rules from the config:
      // the runner starts or stops every proxy and rewrites every network's chains in this one
      // operation. What is left here: route_localnet, and the bindings only a proxy can serve.
      const notes: string[] = [];
      const warnings: string[] = [];
      if (!next.config.userlandProxy) {
        const { networks, dropped } = withoutProxyOnly(next);
        next = { ...next, networks };
        if (dropped.length) notes.push(`unpublished ${dropped.length} binding(s) that only the userland proxy can serve (IPv6 host address, endpoint without IPv6): ${list(dropped)}`);
      } else {
        const { networks, added, skipped } = withProxyTwins(next, host);
        next = { ...next, networks };
        if (added.length) notes.push(`published ${added.length} binding(s) on [::] for endpoints without IPv6, served by the userland proxy: ${list(added)}`);
        warnings.push(...skipped);
      }
      const links = host.links().links;
      const steps = next.networks.filter((n) => n.ipv4 && !n.internal && links.has(n.bridge)).map((n) => sysctlStep(networkSysctls(n, next.config)));
      return { state: next, steps, firewall: 'before', notes, warnings, result: next.config };
    },
  };
}

/** The state without the bindings that exist only for the proxy, and what they were. */
function withoutProxyOnly(state: State): { networks: State['networks']; dropped: string[] } {
  const dropped: string[] = [];
  const networks = state.networks.map((n) => {
    if (!n.endpoints.some((e) => e.ports.some((p) => proxyOnly(e, p)))) return n;
    return {
      ...n,
      endpoints: n.endpoints.map((e) => {
        const keep = e.ports.filter((p) => !proxyOnly(e, p));
        if (keep.length === e.ports.length) return e;
        for (const p of e.ports) if (proxyOnly(e, p)) dropped.push(`${n.name}/${e.name} ${bindingText(p)}`);
        return { ...e, ports: keep };
      }),
    };
  });
  return { networks, dropped };
}

const list = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ', …' : ''}`;

/**
 * With the proxy on, a TCP or UDP port of an endpoint without IPv6 published on all addresses
 * is bound on `::` too (core/port-bindings.ts); turning the proxy on gives the bindings made
 * before it their `::` twin, with the same host port, so that the bindings are the same as
 * if they had been published with the proxy on (and off again drops them: withoutProxyOnly).
 * A twin whose port is taken on IPv6 is left out, with a warning: the rest goes on.
 */
function withProxyTwins(state: State, host: Host): { networks: State['networks']; added: string[]; skipped: string[] } {
  const added: string[] = [];
  const skipped: string[] = [];
  let current = state;
  const networks = state.networks.map((n) => {
    if (n.internal || (n.hostBindingIp && n.hostBindingIp !== '0.0.0.0') || modeOf(n, 6) === 'routed' || !host.hostIpv6()) return n;
    let changed = false;
    const endpoints = n.endpoints.map((e) => {
      if (!e.ipv4 || e.ipv6) return e;
      const ports = [];
      for (const p of e.ports) {
        ports.push(p);
        if (p.hostIp !== '0.0.0.0' || (p.proto !== 'tcp' && p.proto !== 'udp') || p.hostPort === 0 || isRouted(n, p)) continue;
        if (e.ports.some((q) => q.hostIp === '::' && q.proto === p.proto && q.hostPort === p.hostPort)) continue;
        const spec = `[::]:${p.hostPort}:${p.containerPort}/${p.proto}`;
        try {
          const [twin] = planBindings(current, n, e, parsePortSpec(spec), host);
          if (!twin) continue;
          ports.push(twin);
          added.push(`${n.name}/${e.name} ${bindingText(twin)}`);
        } catch (err) {
          skipped.push(`${n.name}/${e.name}: not published on ${spec}: ${err instanceof Error ? err.message.replace(/^cannot publish "[^"]*": /, '') : String(err)}`);
        }
      }
      if (ports.length === e.ports.length) return e;
      changed = true;
      return { ...e, ports };
    });
    const next = changed ? { ...n, endpoints } : n;
    // Later twins are checked against the earlier ones.
    if (changed) current = { ...current, networks: current.networks.map((x) => (x === n ? next : x)) };
    return next;
  });
  return { networks, added, skipped };
}
