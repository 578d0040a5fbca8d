// brnet endpoint link / unlink: parse, call the core, print.
import type { Ctx } from '../core/context.ts';
import type { LinksResult } from '../core/links.ts';
import type { Outcome } from '../core/runner.ts';
import { printJson, printLines } from '../ui/output.ts';
import { linkView } from '../ui/views.ts';
import { type Mutation, printPlan } from './mutation.ts';

/** { network, endpoint, links: [{to, proto, port}] }: the links this call added or removed. */
const resultView = (r: LinksResult) => ({ network: r.network.name, endpoint: r.endpoint.name, links: r.links.map(linkView) });

function show(ctx: Ctx, outcome: Outcome<LinksResult>): void {
  if (outcome.plan !== null) return printPlan(ctx, outcome.plan, resultView(outcome.result));
  if (ctx.json) return printJson(resultView(outcome.result));
  if (ctx.quiet) return;
  const { endpoint, links } = outcome.result;
  printLines(links.map((l) => `${endpoint.name} -> ${l.to} ${l.port}/${l.proto}`));
}

export const link: Mutation<LinksResult> = {
  async operation([network, from, to, ports]) {
    const { linkEndpoints } = await import('../core/links.ts');
    return linkEndpoints(network, from, to, ports);
  },
  print(ctx, outcome) {
    const { network, endpoint, to, links } = outcome.result;
    if (!links.length && outcome.plan === null) ctx.note(`endpoint ${network.name}/${endpoint.name} is already linked to ${to} on these ports`);
    show(ctx, outcome);
  },
};

export const unlink: Mutation<LinksResult> = {
  async operation([network, from, to, ports]) {
    const { unlinkEndpoints } = await import('../core/links.ts');
    return unlinkEndpoints(network, from, to, ports ?? []);
  },
  print(ctx, outcome) {
    const { network, endpoint, to, links } = outcome.result;
    if (!links.length && outcome.plan === null) ctx.note(`endpoint ${network.name}/${endpoint.name} has no links to ${to}`);
    show(ctx, outcome);
  },
};
