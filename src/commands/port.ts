// brnet port …: parse, call the core, print.
import { type Ctx, readOnly } from '../core/context.ts';
import type { Outcome } from '../core/runner.ts';
import { isRouted, listBindings } from '../core/lookup.ts';
import type { PortsResult } from '../core/port.ts';
import { bindingText, hostPortText } from '../net/addr-text.ts';
import { printJson, printLines, printTable } from '../ui/output.ts';
import type { Endpoint } from '../state/schema.ts';
import { portView } from '../ui/views.ts';
import { type Mutation, printPlan } from './mutation.ts';

/** { network, endpoint, ports: [port objects] }: the object publish (and unpublish) print. */
const resultView = (r: PortsResult) => ({
  network: r.network.name,
  endpoint: r.endpoint.name,
  ports: r.ports.map((p) => portView(r.network, r.endpoint, p)),
});

function show(ctx: Ctx, outcome: Outcome<PortsResult>): void {
  if (outcome.plan !== null) return printPlan(ctx, outcome.plan, resultView(outcome.result));
  if (ctx.json) return printJson(resultView(outcome.result));
  if (ctx.quiet) return;
  printLines(outcome.result.ports.map(bindingText));
}

export const publish: Mutation<PortsResult> = {
  async operation([network, endpoint, specs]) {
    // The core of mutating commands is imported on demand: `port ls` stays light.
    const { publishPorts } = await import('../core/port.ts');
    return publishPorts(network, endpoint, specs);
  },
  print: show,
};

export const unpublish: Mutation<PortsResult> = {
  async operation([network, endpoint, specs]) {
    const { unpublishPorts } = await import('../core/port.ts');
    return unpublishPorts(network, endpoint, specs);
  },
  print(ctx, outcome) {
    const { network, endpoint, ports } = outcome.result;
    if (!ports.length && outcome.plan === null) ctx.note(`endpoint ${network.name}/${endpoint.name} has no published ports`);
    show(ctx, outcome);
  },
};

export async function ls(ctx: Ctx, network?: string, endpoint?: string): Promise<void> {
  const state = await readOnly(ctx);
  const rows = listBindings(state, network, endpoint);
  if (ctx.quiet) return printLines(rows.map((r) => hostPortText(r.port.hostIp, r.port.hostPort)));
  const stale = rows.length ? await (await import('../core/status.ts')).staleSet(state) : new Set<Endpoint>();
  if (ctx.json) return printJson(rows.map((r) => portView(r.network, r.endpoint, r.port, stale.has(r.endpoint))));
  // A binding whose proxy should run and does not says so (`restore` starts it again).
  const proxyDown = state.config.userlandProxy || rows.some((r) => r.port.proxy) ? (await import('../core/proxy-ports.ts')).proxyDown : () => false;
  await printTable(
    ['NETWORK', 'ENDPOINT', 'PROTO', 'HOST', 'CONTAINER', 'STATUS'],
    rows.map(({ network: n, endpoint: e, port: p }) => {
      // An IPv6 host address on an endpoint without IPv6 is the userland proxy's, to its IPv4 one.
      const cidr = p.hostIp.includes(':') ? (e.ipv6 ?? e.ipv4) : e.ipv4;
      const cip = cidr?.split('/')[0] ?? '?';
      // A routed binding has no host side: the container port itself is reachable.
      const status = stale.has(e) ? 'stale' : proxyDown(state, { net: n, ep: e, port: p }) ? 'no proxy' : 'ok';
      return [n.name, e.name, p.proto, isRouted(n, p) ? 'routed' : hostPortText(p.hostIp, p.hostPort), hostPortText(cip, p.containerPort), status];
    }),
  );
}
