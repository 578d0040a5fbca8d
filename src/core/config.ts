// Host-wide settings. Turning iptables/ip6tables off removes every brnet rule of that family
// at once (the "none" firewall driver is simply an empty rule set); turning it on installs them.
import { invalid } from '../errors.ts';
import { parseCidr, formatCidr } from '../net/ipam.ts';
import { parseBool } from '../net/names.ts';
import type { Config, State } from '../state/schema.ts';
import { emptyState } from '../state/schema.ts';
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
      if (parseBool(key, value)) {
        throw invalid('userland-proxy cannot be enabled: brnet publishes ports with kernel NAT only (hairpin and loopback included)');
      }
      return { ...c, userlandProxy: false };
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
    plan: async (state) => {
      const next: State = { ...state, config: applySetting(state.config, key, value) };
      const moving = next.config.firewallBackend !== state.config.firewallBackend;
      return { state: next, steps: [], result: next.config, ...(moving ? { migration: 'start' as const } : {}) };
    },
  };
}
