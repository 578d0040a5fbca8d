// `check` and `restore` for the iptables backend: brnet's chains and jumps as the kernel has
// them (iptables.ts parseSave) against what the state renders (rules.ts).
import type { Step } from '../plan/steps.ts';
import type { State } from '../state/schema.ts';
import { type JumpOps, type KernelRules, applyPayload, diffPayload, foreignRules, normalizeSpec } from './iptables.ts';
import { type Family, type Jump, type Ruleset, TABLES, forwardAccepts, jumps } from './rules.ts';
import type { FirewallDrift, Foreign } from './types.ts';

/**
 * `accepts`: the families whose FORWARD chain must hold brnet's accepts (forwardAccepts: the
 * nftables backend under a FORWARD policy of DROP).
 */
export function compareIptables(
  state: State,
  desired: Ruleset,
  kernel: Record<Family, KernelRules | null>,
  accepts: Record<Family, boolean> = { 4: false, 6: false },
): { drift: FirewallDrift[]; foreign: Foreign[] } {
  const drift: FirewallDrift[] = [];
  const foreign: Foreign[] = [];
  for (const f of [4, 6] as Family[]) {
    const k = kernel[f];
    if (!k) continue;
    for (const x of foreignRules(k, state.instance, f)) {
      foreign.push(x);
      drift.push({ kind: 'foreign', what: `${x.what} belongs to brnet instance ${x.instance}` });
    }
    checkRules(f, desired, k, drift, state.instance);
    const have = k.jumps.filter((x) => forwardAccepts(state.instance).some((j) => sameJump(x, j)));
    if (accepts[f] && have.length < 2) drift.push({ kind: 'missing', what: `IPv${f} accepts of brnet's bridges in filter/FORWARD (its policy is DROP)` });
    if (!accepts[f] && have.length) drift.push({ kind: 'leftover', what: `IPv${f} accepts of brnet's bridges in filter/FORWARD` });
  }
  return { drift, foreign };
}

function checkRules(f: Family, desired: Ruleset, k: KernelRules, drift: FirewallDrift[], instance: string | null): void {
  const v = `IPv${f}`;
  let wantAny = false;
  for (const t of TABLES) {
    for (const [chain, rules] of desired[f][t]) {
      wantAny = true;
      const got = k.tables[t].get(chain);
      if (!got) {
        drift.push({ kind: 'missing', what: `${v} chain ${t}/${chain}` });
        continue;
      }
      const gotSet = new Set(got);
      const wantSet = new Set(rules);
      const missing = rules.filter((r) => !gotSet.has(r));
      const extra = got.filter((r) => !wantSet.has(r));
      for (const r of missing) drift.push({ kind: 'missing', what: `${v} rule in ${t}/${chain}: ${r}` });
      for (const r of extra) drift.push({ kind: 'leftover', what: `${v} rule in ${t}/${chain}: ${r}` });
      if (!missing.length && !extra.length && got.join('\n') !== rules.join('\n')) {
        drift.push({ kind: 'wrong', what: `${v} chain ${t}/${chain} has its rules out of order` });
      }
    }
    for (const chain of k.tables[t].keys()) {
      const others = [...(k.owners.get(`${t}/${chain}`) ?? [])].some((i) => i !== null && i !== instance);
      if (others) continue; // named as foreign: never this state's to remove
      if (!desired[f][t].has(chain)) drift.push({ kind: 'leftover', what: `${v} chain ${t}/${chain} is not in the state` });
    }
  }
  const mine = jumps(instance);
  for (const j of mine) {
    const n = k.jumps.filter((x) => x.table === j.table && x.chain === j.chain && x.spec === normalizeSpec(j.spec)).length;
    if (wantAny && n === 0) drift.push({ kind: 'missing', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]}` });
    if (wantAny && n > 1) drift.push({ kind: 'leftover', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]} appears ${n} times` });
    if (!wantAny && n > 0) drift.push({ kind: 'leftover', what: `${v} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]}` });
  }
  // brnet's jumps with the marks of before instances, once this state has its own: replaced.
  if (instance === null) return;
  for (const x of k.jumps) {
    if (x.instance === null && !forwardAccepts(null).some((j) => sameJump(x, j))) drift.push({ kind: 'leftover', what: `${v} rule in ${x.table}/${x.chain}: ${x.spec}` });
  }
}

const sameJump = (a: { table: string; chain: string; spec: string }, j: Jump) =>
  a.table === j.table && a.chain === j.chain && a.spec === normalizeSpec(j.spec);

/** The `iptables-restore` steps that make the kernel's brnet chains and jumps exactly `desired`. */
export function repairIptables(
  instance: string | null,
  desired: Ruleset,
  kernel: Record<Family, KernelRules | null>,
  accepts: Record<Family, boolean> = { 4: false, 6: false },
): Step[] {
  const steps: Step[] = [];
  for (const f of [4, 6] as Family[]) {
    const k = kernel[f];
    if (!k) continue;
    const want = TABLES.some((t) => desired[f][t].size > 0);
    const ops: JumpOps = { add: [], remove: [] };
    const mine = [...jumps(instance).map((j) => ({ j, wanted: want })), ...forwardAccepts(instance).map((j) => ({ j, wanted: accepts[f] }))];
    for (const { j, wanted } of mine) {
      const n = k.jumps.filter((x) => sameJump(x, j)).length;
      if (wanted && n === 0) ops.add.push(j);
      // Exactly one copy is right; position is left alone so that a second restore is a no-op.
      const extra = wanted ? Math.max(0, n - 1) : n;
      for (let i = 0; i < extra; i++) ops.remove.push(j);
    }
    // brnet's jumps of before instances (the only other ones here: another instance's stopped
    // the restore) are replaced by this instance's.
    for (const x of k.jumps) {
      if (!mine.some(({ j }) => sameJump(x, j))) ops.remove.push({ table: x.table, chain: x.chain, spec: x.spec });
    }
    const payload = diffPayload(k.tables, desired[f], ops);
    if (!payload) continue;
    const cmd = f === 4 ? 'iptables-restore' : 'ip6tables-restore';
    steps.push({ show: [`${cmd} --noflush <<'EOF'\n${payload}EOF`], do: () => applyPayload(f, payload) });
  }
  return steps;
}
