// brnet network …: parse, call the core, print.
import type { Command } from 'commander';
import type { Ctx } from '../core/context.ts';
import type { CreateFlags } from '../core/network-spec.ts';
import { readOnly } from '../core/operation.ts';
import { findNetwork } from '../core/lookup.ts';
import { printJson, printLines, printTable } from '../ui/output.ts';
import { networkFlags, networkView } from '../ui/views.ts';
import { write } from '../ui/tty.ts';

/** Only what the user typed: defaults of --no-* flags must not look like choices. */
export function givenOptions<T extends object>(cmd: Command): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cmd.opts())) {
    if (cmd.getOptionValueSource(k) === 'cli' || cmd.getOptionValueSource(k) === 'env') out[k] = v;
  }
  return out as T;
}

export async function create(ctx: Ctx, name: string, cmd: Command): Promise<void> {
  const flags = givenOptions<CreateFlags & { ifNotExists?: boolean }>(cmd);
  // The core of mutating commands is imported on demand: `ls` and `inspect` stay light.
  const { createNetwork } = await import('../core/network.ts');
  const { result, plan } = await createNetwork(ctx, name, flags, flags.ifNotExists ?? false);
  if (plan !== null) return printPlan(ctx, plan, networkView(result.network));
  if (ctx.json) return printJson(networkView(result.network));
  if (ctx.quiet) return;
  const n = result.network;
  if (!result.created) ctx.note(`network ${n.name} already exists with these settings`);
  printLines([n.name]);
}

export async function rm(ctx: Ctx, names: string[], opts: { force?: boolean; ifExists?: boolean }): Promise<void> {
  const { removeNetworks } = await import('../core/network-rm.ts');
  const { result, plan } = await removeNetworks(ctx, names, opts);
  if (plan !== null) return printPlan(ctx, plan, { removed: result.removed });
  if (ctx.json) return printJson({ removed: result.removed });
  if (!ctx.quiet) printLines(result.removed);
}

export async function ls(ctx: Ctx): Promise<void> {
  const state = await readOnly(ctx);
  if (ctx.json) return printJson(state.networks.map(networkView));
  if (ctx.quiet) return printLines(state.networks.map((n) => n.name));
  await printTable(
    ['NAME', 'ID', 'BRIDGE', 'IPV4', 'IPV6', 'ENDPOINTS', 'FLAGS'],
    state.networks.map((n) => [
      n.name,
      n.id.slice(0, 12),
      n.bridge,
      n.ipv4?.subnet ?? '-',
      n.ipv6?.subnet ?? '-',
      String(n.endpoints.length),
      networkFlags(n) || '-',
    ]),
  );
}

export async function inspect(ctx: Ctx, names: string[]): Promise<void> {
  const state = await readOnly(ctx);
  const views = names.map((name) => networkView(findNetwork(state, name)));
  printJson(views.length === 1 ? views[0] : views);
}

export function printPlan(ctx: Ctx, plan: string, result: unknown): void {
  if (ctx.json) return printJson({ dryRun: true, plan: plan ? plan.split('\n') : [], result });
  write(1, plan ? `${plan}\n` : '');
  if (!plan) ctx.note('nothing to do');
}
