// brnet endpoint …: parse, call the core, print.
import type { Command } from 'commander';
import type { Ctx } from '../core/context.ts';
import type { AddFlags } from '../core/endpoint.ts';
import { findEndpoint, findNetwork } from '../core/lookup.ts';
import { readOnly } from '../core/operation.ts';
import type { Endpoint, Network } from '../state/schema.ts';
import { printJson, printLines, printTable } from '../ui/output.ts';
import { bindingText } from '../net/addr-text.ts';
import { endpointView } from '../ui/views.ts';
import { printPlan } from './network.ts';

export async function add(ctx: Ctx, network: string, name: string, cmd: Command): Promise<void> {
  // The core of mutating commands is imported on demand: `ls` and `inspect` stay light.
  const { addEndpoint } = await import('../core/endpoint.ts');
  const { result, plan } = await addEndpoint(ctx, network, name, cmd.opts<AddFlags>());
  const view = endpointView(result.network, result.endpoint);
  if (plan !== null) return printPlan(ctx, plan, view);
  if (ctx.json) return printJson(view);
  if (!ctx.quiet) printLines([name]);
}

export async function rm(ctx: Ctx, network: string, names: string[], opts: { ifExists?: boolean }): Promise<void> {
  const { removeEndpoints } = await import('../core/endpoint-rm.ts');
  const { result, plan } = await removeEndpoints(ctx, network, names, opts);
  if (plan !== null) return printPlan(ctx, plan, { removed: result.removed });
  if (ctx.json) return printJson({ removed: result.removed });
  if (!ctx.quiet) printLines(result.removed);
}

export async function ls(ctx: Ctx, network: string | undefined): Promise<void> {
  const state = await readOnly(ctx);
  const nets: Network[] = network === undefined ? state.networks : [findNetwork(state, network)];
  const rows: [Network, Endpoint][] = nets.flatMap((n) => n.endpoints.map((e): [Network, Endpoint] => [n, e]));
  if (ctx.json) return printJson(rows.map(([n, e]) => endpointView(n, e)));
  if (ctx.quiet) return printLines(rows.map(([, e]) => e.name));
  await printTable(
    ['NETWORK', 'ENDPOINT', 'NETNS', 'IFNAME', 'IPV4', 'IPV6', 'MAC', 'PORTS'],
    rows.map(([n, e]) => [n.name, e.name, e.netns, e.ifname, e.ipv4 ?? '-', e.ipv6 ?? '-', e.mac, e.ports.map(bindingText).join(', ') || '-']),
  );
}

export async function inspect(ctx: Ctx, network: string, name: string): Promise<void> {
  const n = findNetwork(await readOnly(ctx), network);
  printJson(endpointView(n, findEndpoint(n, name)));
}
