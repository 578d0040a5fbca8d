// brnet config show | set: the host-wide settings networks depend on.
import { type Ctx, readOnly } from '../core/context.ts';
import { invalid } from '../errors.ts';
import { type Mutation, printPlan } from './mutation.ts';
import { printJson, printTable } from '../ui/output.ts';
import type { Config } from '../state/schema.ts';

export function configView(c: Config) {
  return {
    'firewall-backend': c.firewallBackend,
    iptables: c.iptables,
    ip6tables: c.ip6tables,
    'ip-forward': c.ipForward,
    'userland-proxy': c.userlandProxy,
    'default-address-pools': c.defaultAddressPools,
  };
}

export async function show(ctx: Ctx): Promise<void> {
  const view = configView((await readOnly(ctx)).config);
  if (ctx.json) return printJson(view);
  await printTable(
    ['KEY', 'VALUE'],
    Object.entries(view).map(([k, v]) => [k, v === null ? '(default)' : Array.isArray(v) ? v.map((p) => `${p.base}/${p.size}`).join(',') : String(v)]),
  );
}

export const set: Mutation<Config> = {
  async operation([key, value]) {
    if (!key) throw invalid('missing key');
    const { setConfig } = await import('../core/config.ts');
    return setConfig(key, value);
  },
  print(ctx, { result, plan }) {
    if (plan !== null) return printPlan(ctx, plan, configView(result));
    if (ctx.json) printJson(configView(result));
  },
};
