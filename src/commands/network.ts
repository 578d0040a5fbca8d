// brnet network …: parse, call the core, print.
import { type Ctx, readOnly } from '../core/context.ts';
import type { Created } from '../core/network.ts';
import type { Removed } from '../core/network-rm.ts';
import type { CreateFlags } from '../core/network-spec.ts';
import { type Mutation, givenOptions, printPlan } from './mutation.ts';
import { findNetwork } from '../core/lookup.ts';
import { invalid } from '../errors.ts';
import { printJson, printLines, printTable } from '../ui/output.ts';
import { networkFlags, networkView } from '../ui/views.ts';

export const create: Mutation<Created> = {
  async operation([name], cmd) {
    const { driver, ...flags } = givenOptions<CreateFlags & { ifNotExists?: boolean; driver?: string }>(cmd);
    checkDriver(driver);
    // The core of mutating commands is imported on demand: `ls` and `inspect` stay light.
    const { createNetwork } = await import('../core/network.ts');
    return createNetwork(name, flags, flags.ifNotExists ?? false);
  },
  print(ctx, { result, plan }) {
    if (plan !== null) return printPlan(ctx, plan, networkView(result.network));
    if (ctx.json) return printJson(networkView(result.network));
    if (ctx.quiet) return;
    const n = result.network;
    if (!result.created) ctx.note(`network ${n.name} already exists with these settings`);
    printLines([n.name]);
  },
};

/** `-d bridge` is what Docker users type; brnet drives bridges only. */
export function checkDriver(driver: string | undefined): void {
  if (driver === undefined || driver === 'bridge') return;
  throw invalid(`driver ${driver} is not supported: brnet makes bridge networks only`, 'leave out --driver, or give --driver bridge');
}

export const rm: Mutation<Removed> = {
  async operation([names], cmd) {
    const { removeNetworks } = await import('../core/network-rm.ts');
    return removeNetworks(names, cmd.opts<{ force?: boolean; ifExists?: boolean }>());
  },
  print(ctx, { result, plan }) {
    if (plan !== null) return printPlan(ctx, plan, { removed: result.removed });
    if (ctx.json) return printJson({ removed: result.removed });
    if (!ctx.quiet) printLines(result.removed);
  },
};

export async function ls(ctx: Ctx): Promise<void> {
  const state = await readOnly(ctx);
  if (ctx.json) {
    const stale = await (await import('../core/status.ts')).staleSet(state);
    return printJson(state.networks.map((n) => networkView(n, stale)));
  }
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
  const nets = names.map((name) => findNetwork(state, name));
  const stale = await (await import('../core/status.ts')).staleSet({ ...state, networks: nets });
  const views = nets.map((n) => networkView(n, stale));
  printJson(views.length === 1 ? views[0] : views);
}
