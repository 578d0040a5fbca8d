// Applies rendered rules with one `iptables-restore --noflush` per family. Declaring
// `:CHAIN - [0:0]` in --noflush mode creates or flushes just that chain, so a payload that
// re-declares a chain and appends its rules replaces it exactly, atomically per table.
// Only chains whose content changes are sent, so an operation's cost does not grow with the
// number of networks and ports on the host.
import { run } from '../net/exec.ts';
import type { Step } from '../plan/steps.ts';
import { type Chains, type Family, type Jump, type Ruleset, TABLES, type Table, type TableSet, jumps } from './rules.ts';

const restoreCmd = (f: Family) => (f === 4 ? 'iptables-restore' : 'ip6tables-restore');
const saveCmd = (f: Family) => (f === 4 ? 'iptables-save' : 'ip6tables-save');

export interface KernelRules {
  /** brnet-owned chains (name starts with BRNET) and their rules as iptables-save prints them. */
  tables: TableSet;
  /** built-in chain -> rule specs that jump into a BRNET chain, in order. */
  jumps: { table: Table; chain: string; spec: string }[];
  /** every chain of every table, for telling "missing" from "empty". */
  allChains: Record<Table, Set<string>>;
}

/** iptables-save prints comments quoted; brnet's comments never need quotes. */
export function normalizeSpec(spec: string): string {
  return spec.replace(/--comment "([^"]*)"/g, '--comment $1').trim();
}

export function parseSave(text: string): KernelRules {
  const tables: TableSet = { raw: new Map(), filter: new Map(), nat: new Map() };
  const allChains: Record<Table, Set<string>> = { raw: new Set(), filter: new Set(), nat: new Set() };
  const found: KernelRules['jumps'] = [];
  let table: Table | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = (TABLES as string[]).includes(t) ? (t as Table) : null;
    } else if (!table) {
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      allChains[table].add(name);
      if (name.startsWith('BRNET')) tables[table].set(name, []);
    } else if (line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      const [, chain = '', rest = ''] = m;
      const spec = normalizeSpec(rest);
      if (chain.startsWith('BRNET')) tables[table].get(chain)?.push(spec);
      else if (/-j BRNET\S*$/.test(spec) || /brnet/.test(spec)) found.push({ table, chain, spec });
    }
  }
  return { tables, jumps: found, allChains };
}

export async function readKernelRules(f: Family): Promise<KernelRules> {
  const r = await run([saveCmd(f)]);
  return parseSave(r.stdout);
}

const sameRules = (a: string[] | undefined, b: string[] | undefined) =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

export interface JumpOps {
  add: Jump[];
  remove: Jump[];
}

/**
 * Edits that turn a chain holding `old` into `want`, or null when re-declaring it is simpler.
 * Rules are unique within a chain (each names its owner), so the rules to keep are a longest
 * increasing subsequence of positions: delete the others by their spec, then insert each
 * missing rule at its final position, in ascending order. A dispatcher chain with a rule per
 * network thus changes by a few lines when a network comes or goes, instead of being
 * rewritten whole, which keeps `iptables-restore` time flat as networks accumulate.
 * Small chains too: re-declaring flushes, i.e. deletes every rule, and with nf_tables a commit
 * that deletes anything waits for an RCU grace period per table, while one that only inserts
 * returns at once: creating a network then costs no deletion at all.
 */
export function chainEdits(chain: string, old: string[], want: string[]): string[] | null {
  if (!old.length || new Set(old).size !== old.length || new Set(want).size !== want.length) return null;
  const pos = new Map(want.map((r, i) => [r, i]));
  const seq = old.map((r) => pos.get(r) ?? -1);
  const keep = new Set(longestIncreasing(seq.filter((i) => i >= 0)));
  const lines: string[] = [];
  for (let i = 0; i < old.length; i++) if (!keep.has(seq[i] as number)) lines.push(`-D ${chain} ${old[i]}`);
  want.forEach((r, i) => {
    if (!keep.has(i)) lines.push(`-I ${chain} ${i + 1} ${r}`);
  });
  return lines.length <= want.length ? lines : null; // re-declaring takes want.length + 1 lines
}

/** The values of a longest strictly increasing subsequence (patience sorting, O(n log n)). */
function longestIncreasing(xs: number[]): number[] {
  const tails: number[] = []; // index into xs of the smallest tail of each length
  const prev: number[] = new Array(xs.length).fill(-1);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[tails[mid] as number] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1] as number;
    tails[lo] = i;
  }
  const out: number[] = [];
  for (let i = tails.length ? (tails[tails.length - 1] as number) : -1; i >= 0; i = prev[i] as number) out.push(xs[i] as number);
  return out.reverse();
}

/**
 * The restore payload that turns `from` into `to` for one family. With `full`, every chain of
 * `to` is re-declared even if unchanged (restore, first network), so the kernel converges
 * whatever it held before; with `edits`, chains are edited in place (see chainEdits),
 * which assumes the kernel holds `from` exactly (the caller falls back to a full payload if
 * that assumption fails). Returns '' when there is nothing to do.
 */
export function diffPayload(from: TableSet, to: TableSet, jumpOps: JumpOps, full = false, edits = false): string {
  const out: string[] = [];
  for (const table of TABLES) {
    const lines: string[] = [];
    const declares: string[] = [];
    const rules: string[] = [];
    const removed: string[] = [];
    const want = to[table];
    const had = from[table];
    for (const [chain, specs] of want) {
      const old = had.get(chain);
      if (!full && sameRules(old, specs)) continue;
      const inPlace = edits && !full && old ? chainEdits(chain, old, specs) : null;
      if (inPlace) {
        rules.push(...inPlace);
        continue;
      }
      declares.push(`:${chain} - [0:0]`);
      for (const s of specs) rules.push(`-A ${chain} ${s}`);
    }
    for (const chain of had.keys()) {
      if (want.has(chain)) continue;
      declares.push(`:${chain} - [0:0]`); // flush before deleting
      removed.push(chain);
    }
    const adds = jumpOps.add.filter((j) => j.table === table).map((j) => `-I ${j.chain} 1 ${j.spec}`);
    const dels = jumpOps.remove.filter((j) => j.table === table).map((j) => `-D ${j.chain} ${j.spec}`);
    if (!declares.length && !rules.length && !adds.length && !dels.length) continue;
    // Dispatcher chains must exist before a built-in chain can jump to them, and stop being
    // referenced before they can be deleted: declarations first, deletions last.
    lines.push(`*${table}`, ...declares, ...rules, ...adds, ...dels, ...removed.map((c) => `-X ${c}`), 'COMMIT');
    out.push(...lines);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export async function applyPayload(f: Family, payload: string): Promise<void> {
  if (!payload) return;
  await run([restoreCmd(f), '--noflush'], { input: payload });
}

/** Which jumps are missing / present, from the kernel's view. */
export function jumpOpsFor(kernel: KernelRules | null, wantChains: boolean): JumpOps {
  const present = (j: Jump) =>
    kernel?.jumps.filter((k) => k.table === j.table && k.chain === j.chain && k.spec === normalizeSpec(j.spec)) ?? [];
  if (wantChains) return { add: jumps().filter((j) => present(j).length === 0), remove: [] };
  // Remove every copy, in case an older run or a restore left duplicates.
  return { add: [], remove: jumps().flatMap((j) => present(j).map(() => j)) };
}

const hasChains = (t: TableSet) => TABLES.some((tb) => t[tb].size > 0);

/**
 * The firewall step of an operation: replace what changed between the rules of the old and
 * the new state. Jumps from built-in chains are looked up (one iptables-save) only when a
 * family gains its first or loses its last network, so ordinary calls spawn one process
 * per family at most.
 */
export async function firewallStep(
  from: Ruleset,
  to: Ruleset,
  opts: { full?: boolean; readKernel?: (f: Family) => Promise<KernelRules> } = {},
): Promise<Step | null> {
  const payloads: { f: Family; forward: string; forwardWhole: () => string; back: () => string; backWhole: () => string }[] = [];
  for (const f of [4, 6] as Family[]) {
    const had = hasChains(from[f]);
    const want = hasChains(to[f]);
    let fwd: JumpOps = { add: [], remove: [] };
    let back: JumpOps = { add: [], remove: [] };
    if (want !== had || opts.full) {
      const kernel = want || had ? await (opts.readKernel ?? readKernelRules)(f) : null;
      if (kernel) {
        fwd = jumpOpsFor(kernel, want);
        back = { add: fwd.remove, remove: fwd.add };
      }
    }
    const forward = diffPayload(from[f], to[f], fwd, opts.full, true);
    if (!forward) continue;
    // Only the forward edits are needed up front; the rest only on a fallback or a rollback.
    const ff = from[f];
    const tf = to[f];
    payloads.push({
      f,
      forward,
      forwardWhole: () => diffPayload(ff, tf, fwd, opts.full),
      back: () => diffPayload(tf, ff, back, false, true),
      backWhole: () => diffPayload(tf, ff, back),
    });
  }
  if (!payloads.length) return null;
  const applied: Family[] = [];
  return {
    show: payloads.map((p) => `${restoreCmd(p.f)} --noflush <<'EOF'\n${p.forward}EOF`),
    async do() {
      for (const p of payloads) {
        await applyEditsOrWhole(p.f, p.forward, p.forwardWhole);
        applied.push(p.f);
      }
    },
    async undo() {
      for (const p of payloads.filter((x) => applied.includes(x.f)).reverse()) await applyEditsOrWhole(p.f, p.back(), p.backWhole);
    },
  };
}

/**
 * In-place edits assume the kernel holds exactly what the state says; if someone changed a
 * chain behind brnet's back an edit fails (restore is atomic per table, so nothing was
 * applied) and the whole chains are re-declared instead.
 */
async function applyEditsOrWhole(f: Family, edits: string, whole: () => string): Promise<void> {
  try {
    await applyPayload(f, edits);
  } catch (e) {
    const all = whole();
    if (all === edits) throw e;
    await applyPayload(f, all);
  }
}

export type { Chains };
