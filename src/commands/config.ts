// brnet config show | set: the host-wide settings networks depend on.
import type { Ctx } from '../core/context.ts';
import { invalid } from '../errors.ts';
import { readOnly } from '../core/operation.ts';
import { setConfig } from '../core/config.ts';
import { printJson, printTable } from '../ui/output.ts';
import type { Config } from '../state/schema.ts';
import { write } from '../ui/tty.ts';

export function configView(c: Config) {
  return {
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

export async function set(ctx: Ctx, key: string, value: string): Promise<void> {
  if (!key) throw invalid('missing key');
  const { result, plan } = await setConfig(ctx, key, value);
  if (plan !== null) {
    if (ctx.json) return printJson({ dryRun: true, plan: plan ? plan.split('\n') : [], result: configView(result) });
    if (plan) write(1, `${plan}\n`);
    return;
  }
  if (ctx.json) printJson(configView(result));
}
