// Applies rendered rules with one `iptables-restore --noflush` per family. Declaring
// `:CHAIN - [0:0]` in --noflush mode creates or flushes just that chain, so a payload that
// re-declares a chain and appends its rules replaces it exactly, atomically per table.
// Only chains whose content changes are sent, so an operation's cost does not grow with the
// number of networks and ports on the host.
import { run } from '../net/exec.ts';
import type { Step } from '../plan/steps.ts';
import { anotherInstance } from '../errors.ts';
import { type Chains, type Family, type Jump, type Ruleset, TABLES, type Table, type TableSet, forwardAccepts, isOwnChain, jumps } from './rules.ts';

const restoreCmd = (f: Family) => (f === 4 ? 'iptables-restore' : 'ip6tables-restore');
const saveCmd = (f: Family) => (f === 4 ? 'iptables-save' : 'ip6tables-save');

export interface KernelJump {
  table: Table;
  chain: string;
  spec: string;
  /** The instance in its mark; null for a jump written before instances existed. */
  instance: string | null;
}

export interface KernelRules {
  /** brnet's chains (exact names, see isOwnChain) and their rules as iptables-save prints them. */
  tables: TableSet;
  /** Rules in built-in chains that are exactly one of brnet's jumps, of whichever instance. */
  jumps: KernelJump[];
  /** every chain of every table, for telling "missing" from "empty". */
  allChains: Record<Table, Set<string>>;
  /** "table/chain" of brnet's chains -> the instances named by the marks of their rules. */
  owners: Map<string, Set<string | null>>;
  /** The policy of the filter table's FORWARD chain ("ACCEPT", "DROP"); null when not listed. */
  forwardPolicy: string | null;
}

/** iptables-save prints comments quoted; brnet's comments never need quotes. */
export function normalizeSpec(spec: string): string {
  return spec.replace(/--comment "([^"]*)"/g, '--comment $1').trim();
}

const MARK_IN_RULE = /--comment brnet(?:@([0-9a-f]{8}))?:\S/;

/**
 * A rule of a built-in chain is brnet's only if it is, word for word, one of the jumps brnet
 * writes (with any instance's mark): an admin's rule that mentions brnet, or a comment with
 * spaces, is not, and is never touched.
 */
function asJump(table: Table, chain: string, spec: string): KernelJump | null {
  const m = / --comment brnet(?:@([0-9a-f]{8}))?(:forward-accept)? -j (BRNET-|ACCEPT$)/.exec(` ${spec}`);
  if (!m) return null;
  const generic = spec.replace(/--comment brnet@[0-9a-f]{8}(:forward-accept)? -j /, '--comment brnet$1 -j ');
  const known = [...jumps(null), ...forwardAccepts(null)].some((j) => j.table === table && j.chain === chain && j.spec === generic);
  return known ? { table, chain, spec, instance: m[1] ?? null } : null;
}

export function parseSave(text: string): KernelRules {
  const tables: TableSet = { raw: new Map(), filter: new Map(), nat: new Map() };
  const allChains: Record<Table, Set<string>> = { raw: new Set(), filter: new Set(), nat: new Set() };
  const owners = new Map<string, Set<string | null>>();
  const found: KernelJump[] = [];
  let forwardPolicy: string | null = null;
  let table: Table | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = (TABLES as string[]).includes(t) ? (t as Table) : null;
    } else if (!table) {
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      allChains[table].add(name);
      if (isOwnChain(name)) tables[table].set(name, []);
      if (table === 'filter' && name === 'FORWARD') forwardPolicy = line.split(' ')[1] ?? null;
    } else if (line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      const [, chain = '', rest = ''] = m;
      const spec = normalizeSpec(rest);
      const own = tables[table].get(chain);
      if (own) {
        own.push(spec);
        const mark = MARK_IN_RULE.exec(spec);
        if (mark) {
          const key = `${table}/${chain}`;
          (owners.get(key) ?? owners.set(key, new Set()).get(key)!).add(mark[1] ?? null);
        }
      } else {
        const j = asJump(table, chain, spec);
        if (j) found.push(j);
      }
    }
  }
  return { tables, jumps: found, allChains, owners, forwardPolicy };
}

/** What in `k` belongs to another instance than `mine`: jumps and chains, for messages. */
export function foreignRules(k: KernelRules, mine: string | null, family: Family): { what: string; instance: string }[] {
  const out: { what: string; instance: string }[] = [];
  const other = (i: string | null): i is string => i !== null && i !== mine;
  for (const j of k.jumps) {
    if (other(j.instance)) out.push({ what: `IPv${family} jump ${j.table}/${j.chain} -> ${j.spec.split(' -j ')[1]}`, instance: j.instance });
  }
  for (const [key, set] of k.owners) {
    for (const i of set) if (other(i)) out.push({ what: `IPv${family} chain ${key}`, instance: i });
  }
  return out;
}

/** Exit 5 naming another instance's rules, before anything is changed. */
export function refuseForeign(k: KernelRules, mine: string | null, family: Family): void {
  const f = foreignRules(k, mine, family);
  if (f.length) throw anotherInstance(f[0]!.instance, f.map((x) => x.what));
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

/**
 * Which jumps to add and remove, from the kernel's view: this instance's, plus every copy of
 * the jumps written before instances existed, which its marked ones replace. Another
 * instance's jumps are never among them (firewallStep refuses first).
 */
export function jumpOpsFor(kernel: KernelRules | null, wantChains: boolean, instance: string | null = null): JumpOps {
  const present = (j: Jump) =>
    kernel?.jumps.filter((k) => k.table === j.table && k.chain === j.chain && k.spec === normalizeSpec(j.spec)) ?? [];
  const legacy = instance === null ? [] : jumps(null).flatMap((j) => present(j).map(() => j));
  if (wantChains) return { add: jumps(instance).filter((j) => present(j).length === 0), remove: legacy };
  // Remove every copy, in case an older run or a restore left duplicates.
  return { add: [], remove: [...jumps(instance).flatMap((j) => present(j).map(() => j)), ...legacy] };
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
        // The first network of this state meets another state dir's chains here.
        refuseForeign(kernel, to.instance, f);
        fwd = jumpOpsFor(kernel, want, to.instance);
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
  const applyEditsOrWhole = async (f: Family, edits: string, whole: () => string) => {
    try {
      await applyPayload(f, edits);
    } catch (e) {
      const all = whole();
      if (all === edits) throw e;
      // In-place edits assume the kernel holds exactly what the state says, and fail (atomically
      // per table) when it does not: a chain changed by hand, which re-declaring it repairs, or
      // another state dir's chain, which must not be rewritten.
      refuseForeign(await readKernelRules(f), to.instance, f);
      await applyPayload(f, all);
    }
  };
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

export type { Chains };

/**
 * brnet's accepts in iptables' FORWARD chain (forwardAccepts), added or removed to match
 * `want`, from what `kernel` holds; null when they already match.
 */
export function forwardAcceptsStep(f: Family, kernel: KernelRules, want: boolean, instance: string | null): Step | null {
  const present = (j: Jump) => kernel.jumps.filter((k) => k.table === j.table && k.chain === j.chain && k.spec === normalizeSpec(j.spec)).length;
  const ops: JumpOps = { add: [], remove: [] };
  for (const j of forwardAccepts(instance)) {
    const n = present(j);
    if (want && n === 0) ops.add.push(j);
    for (let i = want ? 1 : 0; i < n; i++) ops.remove.push(j);
  }
  const none: TableSet = { raw: new Map(), filter: new Map(), nat: new Map() };
  const forward = diffPayload(none, none, ops);
  if (!forward) return null;
  const back = diffPayload(none, none, { add: ops.remove, remove: ops.add });
  return {
    show: [`${restoreCmd(f)} --noflush <<'EOF'\n${forward}EOF`],
    do: () => applyPayload(f, forward),
    undo: () => applyPayload(f, back),
  };
}
