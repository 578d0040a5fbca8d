// brnet explain: the verdict first, then the path, the translations and every rule met.
import type { Ctx } from '../core/context.ts';
import { readOnly } from '../core/context.ts';
import { printJson, printLines } from '../ui/output.ts';

export async function explain(ctx: Ctx, opts: { from?: string; to?: string }): Promise<void> {
  const { explain, parseQuery } = await import('../core/explain.ts');
  const q = parseQuery(opts.from ?? '', opts.to ?? '');
  const r = await explain(await readOnly(ctx), q);
  if (ctx.json) return printJson(r);
  if (ctx.quiet) return printLines([r.verdict]);
  const port = r.path.dport === null ? '' : `:${r.path.dport}`;
  printLines([
    `${r.verdict}: ${r.reason}`,
    `  ${r.path.src}${r.path.iif ? ` (in ${r.path.iif})` : ' (the host)'} -> ${r.path.dst}${port}/${r.proto}${r.path.oif ? ` (out ${r.path.oif})` : ''}`,
    ...r.nat.map((n) => `  ${n.type}${n.to ? ` to ${n.to}` : ''}  ${n.table}/${n.chain}${n.owner ? `  [${n.owner}]` : ''}`),
    ...r.rules.map((x) => `  ${x.table}/${x.chain}: ${x.rule}`),
  ]);
}
