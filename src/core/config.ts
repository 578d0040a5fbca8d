// Host-wide settings. Turning iptables/ip6tables off removes every brnet rule of that family
// at once (the "none" firewall driver is simply an empty rule set); turning it on installs them.
import { invalid } from '../errors.ts';
import { parseCidr, formatCidr } from '../net/ipam.ts';
import { parseBool } from '../net/names.ts';
import type { Config, State } from '../state/schema.ts';
import { type Ctx, requireRoot } from './context.ts';
import { firewallChange, mutate } from './operation.ts';

export const CONFIG_KEYS = ['iptables', 'ip6tables', 'ip-forward', 'userland-proxy', 'default-address-pools'] as const;

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

export async function setConfig(ctx: Ctx, key: string, value: string) {
  applySetting((await import('../state/schema.ts')).emptyState().config, key, value); // validate before locking
  requireRoot(ctx);
  return mutate(ctx, async (state) => {
    const next: State = { ...state, config: applySetting(state.config, key, value) };
    const fw = await firewallChange(state, next);
    return { state: next, steps: fw ? [fw] : [], result: next.config };
  });
}
