// brnet endpoint …: parse, call the core, print.
import { type Ctx, readOnly } from '../core/context.ts';
import type { AddFlags, Added } from '../core/endpoint.ts';
import type { Removed } from '../core/endpoint-rm.ts';
import { findEndpoint, findNetwork } from '../core/lookup.ts';
import type { Endpoint, Network } from '../state/schema.ts';
import { printJson, printLines, printTable } from '../ui/output.ts';
import { bindingText } from '../net/addr-text.ts';
import { endpointView } from '../ui/views.ts';
import { type Mutation, printPlan } from './mutation.ts';

export const add: Mutation<Added> = {
  async operation([network, name], cmd) {
    // The core of mutating commands is imported on demand: `ls` and `inspect` stay light.
    const { addEndpoint } = await import('../core/endpoint.ts');
    return addEndpoint(network, name, cmd.opts<AddFlags>());
  },
  print(ctx, { result, plan }) {
    const view = endpointView(result.network, result.endpoint);
    if (plan !== null) return printPlan(ctx, plan, view);
    if (ctx.json) return printJson(view);
    if (!ctx.quiet) printLines([result.endpoint.name]);
  },
};

export const rm: Mutation<Removed> = {
  async operation([network, names], cmd) {
    const { removeEndpoints } = await import('../core/endpoint-rm.ts');
    return removeEndpoints(network, names, cmd.opts<{ ifExists?: boolean }>());
  },
  print(ctx, { result, plan }) {
    if (plan !== null) return printPlan(ctx, plan, { removed: result.removed });
    if (ctx.json) return printJson({ removed: result.removed });
    if (!ctx.quiet) printLines(result.removed);
  },
};

export async function ls(ctx: Ctx, network: string | undefined): Promise<void> {
  const state = await readOnly(ctx);
  const nets: Network[] = network === undefined ? state.networks : [findNetwork(state, network)];
  const rows: [Network, Endpoint][] = nets.flatMap((n) => n.endpoints.map((e): [Network, Endpoint] => [n, e]));
  if (ctx.quiet) return printLines(rows.map(([, e]) => e.name));
  const stale = rows.length ? await (await import('../core/status.ts')).staleSet(state) : new Set<Endpoint>();
  if (ctx.json) return printJson(rows.map(([n, e]) => endpointView(n, e, stale.has(e))));
  await printTable(
    ['NETWORK', 'ENDPOINT', 'NETNS', 'IFNAME', 'IPV4', 'IPV6', 'MAC', 'PORTS', 'STATUS'],
    rows.map(([n, e]) => [
      n.name,
      e.name,
      e.netns,
      e.ifname,
      e.ipv4 ?? '-',
      e.ipv6 ?? '-',
      e.mac,
      e.ports.map(bindingText).join(', ') || '-',
      stale.has(e) ? 'stale' : 'ok',
    ]),
  );
}

export async function inspect(ctx: Ctx, network: string, name: string): Promise<void> {
  const state = await readOnly(ctx);
  const n = findNetwork(state, network);
  const ep = findEndpoint(n, name);
  const { staleSet } = await import('../core/status.ts');
  printJson(endpointView(n, ep, (await staleSet({ ...state, networks: [{ ...n, endpoints: [ep] }] })).has(ep)));
}
