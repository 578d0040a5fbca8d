// brnet network …: parse, call the core, print.
import { type Ctx, readOnly } from '../core/context.ts';
import type { Created } from '../core/network.ts';
import type { Removed } from '../core/network-rm.ts';
import type { CreateFlags } from '../core/network-spec.ts';
import { type Mutation, givenOptions, printPlan } from './mutation.ts';
import type { Outcome } from '../core/runner.ts';
import { findNetwork } from '../core/lookup.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import type { Template } from '../ui/format.ts';
import { write } from '../tty.ts';
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

export interface ListFlags {
  filter?: string[];
  format?: string;
  /** Docker's: the whole ID in the table and in {{.ID}}. */
  trunc?: boolean;
}

export async function ls(ctx: Ctx, flags: ListFlags = {}): Promise<void> {
  // Loaded only for a filter: `ls` is the call people make most.
  const filter = flags.filter?.length ? await import('../core/network-filter.ts') : null;
  const filters = filter?.parseFilters(flags.filter ?? [], ['name', 'id', 'label', 'driver', 'internal']);
  const idLength = flags.trunc === false ? 64 : 12;
  const template = await templateOf(ctx, flags.format, idLength);
  const state = await readOnly(ctx);
  const nets = filter && filters ? state.networks.filter((n) => filter.matches(n, filters)) : state.networks;
  if (ctx.json) {
    const stale = await (await import('../core/status.ts')).staleSet(state);
    return printJson(nets.map((n) => networkView(n, stale)));
  }
  if (ctx.quiet) return printLines(nets.map((n) => n.name));
  if (template) return printFormatted(template, nets, state);
  await printTable(
    ['NAME', 'ID', 'BRIDGE', 'IPV4', 'IPV6', 'ENDPOINTS', 'FLAGS'],
    nets.map((n) => [
      n.name,
      n.id.slice(0, idLength),
      n.bridge,
      n.ipv4?.subnet ?? '-',
      n.ipv6?.subnet ?? '-',
      String(n.endpoints.length),
      networkFlags(n) || '-',
    ]),
  );
}

export async function inspect(ctx: Ctx, names: string[], flags: ListFlags = {}): Promise<void> {
  const template = await templateOf(ctx, flags.format, 64);
  const state = await readOnly(ctx);
  const nets = names.map((name) => findNetwork(state, name));
  if (template) return printFormatted(template, nets, state);
  const stale = await (await import('../core/status.ts')).staleSet({ ...state, networks: nets });
  const views = nets.map((n) => networkView(n, stale));
  printJson(views.length === 1 ? views[0] : views);
}

/** --format's template, checked before the state is read; null without one (or `table`). */
async function templateOf(ctx: Ctx, format: string | undefined, idLength: 12 | 64): Promise<Template<Network> | null> {
  if (format === undefined) return null;
  if (ctx.json) throw invalid('--format and --json cannot be used together', 'give one of them (`--format json` prints one JSON object per line)');
  const [{ parseTemplate }, { networkFields }] = await Promise.all([import('../ui/format.ts'), import('../ui/network-fields.ts')]);
  return parseTemplate(format, networkFields(idLength));
}

async function printFormatted(template: Template<Network>, nets: Network[], state: State): Promise<void> {
  // `stale` of each endpoint is known only by looking at the host: only for {{json .}}.
  const stale = template.needsWhole && nets.some((n) => n.endpoints.length) ? await (await import('../core/status.ts')).staleSet({ ...state, networks: nets }) : new Set<Endpoint>();
  write(1, template.render(nets, (n) => networkView(n, stale)));
}

export interface PruneFlags {
  filter?: string[];
  yes?: boolean;
  force?: boolean;
}

async function pruneFilters(flags: PruneFlags) {
  return (await import('../core/network-filter.ts')).parseFilters(flags.filter ?? [], ['label']);
}

function printPruned(ctx: Ctx, outcome: Outcome<Removed>): void {
  if (outcome.plan === null && !ctx.json && !outcome.result.removed.length) ctx.note('no network without endpoints to remove');
  rm.print(ctx, outcome);
}

/** In a batch nobody can be asked: --yes is required. */
export const pruneInBatch: Mutation<Removed> = {
  async operation(_args, cmd) {
    const flags = cmd.opts<PruneFlags>();
    const filters = await pruneFilters(flags);
    if (!flags.yes && !flags.force) throw invalid('network prune inside a batch needs --yes', 'nobody can be asked there: write network prune --yes');
    return (await import('../core/network-prune.ts')).pruneNetworks(filters, null);
  },
  print: printPruned,
};

/**
 * Without --yes, on a terminal, the networks that would go are listed and the user asked;
 * only those go (a network that gained an endpoint meanwhile stays). --dry-run asks nothing.
 */
export async function prune(ctx: Ctx, flags: PruneFlags): Promise<void> {
  const filters = await pruneFilters(flags);
  const { pruneCandidates, pruneNetworks } = await import('../core/network-prune.ts');
  let confirmed: Set<string> | null = null;
  if (!flags.yes && !flags.force && !ctx.dryRun) {
    const { ask, canAsk } = await import('../ui/confirm.ts');
    if (!canAsk()) throw invalid('network prune asks before removing anything, and there is no terminal to ask on', 'give --yes to remove without asking');
    const candidates = pruneCandidates(await readOnly(ctx), filters);
    const names = candidates.map((n) => n.name);
    const shown = names.length > 10 ? `${names.slice(0, 10).join(', ')} and ${names.length - 10} more` : names.join(', ');
    if (candidates.length && !(await ask(`remove ${names.length} network${names.length > 1 ? 's' : ''} without endpoints (${shown})? [y/N] `))) {
      ctx.note('nothing removed');
      return;
    }
    confirmed = new Set(candidates.map((n) => n.id));
  }
  const [{ run }, { runWithProgress }] = await Promise.all([import('../core/runner.ts'), import('../ui/progress.ts')]);
  printPruned(ctx, await runWithProgress(ctx, pruneNetworks(filters, confirmed), run));
}
