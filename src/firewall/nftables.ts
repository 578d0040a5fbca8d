// The nftables backend: brnet's tables `ip brnet` and `ip6 brnet` (nft-rules.ts renders
// them), changed with one `nft -f -` transaction per operation, both families at once, and
// read back with one `nft -j list ruleset`, every field checked before use.
//
// A change between two states only touches what differs: new chains are added, changed ones
// flushed and filled again, verdict-map elements added and deleted one by one, and chains no
// longer needed emptied and deleted once nothing refers to them. If the kernel does not hold
// what the old state says (a table deleted behind brnet's back), the transaction fails as a
// whole, and the tables are made again from nothing, in one transaction too.
import { anotherInstance, environment } from '../errors.ts';
import { type RunResult, run } from '../net/exec.ts';
import type { Step } from '../plan/steps.ts';
import { type NftRuleset, type NftTable, MAPS, NFT_TABLE, baseChains, hasTable, nftFamily } from './nft-rules.ts';
import { type Family, ND_TYPES } from './rules.ts';

const T = (f: Family) => `${nftFamily(f)} ${NFT_TABLE}`;

/** Commands that make the table exactly `t` from whatever is there (nothing, or an old table). */
export function wholeTable(f: Family, t: NftTable): string[] {
  // `add` then `delete` removes a table whether or not it exists, in the same transaction.
  const out = [`add table ${T(f)}`, `delete table ${T(f)}`];
  if (!hasTable(t)) return out;
  out.push(`add table ${T(f)}`);
  for (const c of t.chains.keys()) out.push(`add chain ${T(f)} ${c}`);
  for (const m of MAPS) out.push(`add map ${T(f)} ${m} { type ifname : verdict; }`);
  for (const [m, elems] of t.maps) if (elems.size) out.push(`add element ${T(f)} ${m} { ${elementList(elems)} }`);
  for (const [c, rules] of t.chains) for (const r of rules) out.push(`add rule ${T(f)} ${c} ${r}`);
  for (const b of baseChains()) {
    out.push(`add chain ${T(f)} ${b.name} { ${b.decl} }`);
    for (const r of b.rules) out.push(`add rule ${T(f)} ${b.name} ${r}`);
  }
  return out;
}

const elementList = (elems: Map<string, string>) => [...elems].map(([k, v]) => `"${k}" : jump ${v}`).join(', ');

const same = (a: string[] | undefined, b: string[] | undefined) => a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** Commands that turn a table holding `from` into `to`; [] when nothing changes. */
export function tableEdits(f: Family, from: NftTable, to: NftTable): string[] {
  if (!hasTable(from) && !hasTable(to)) return [];
  if (!hasTable(from) || !hasTable(to)) return wholeTable(f, to);
  const out: string[] = [];
  for (const c of to.chains.keys()) if (!from.chains.has(c)) out.push(`add chain ${T(f)} ${c}`);
  for (const m of MAPS) {
    const was = from.maps.get(m) ?? new Map<string, string>();
    const now = to.maps.get(m) ?? new Map<string, string>();
    const gone = [...was].filter(([k, v]) => now.get(k) !== v).map(([k]) => `"${k}"`);
    if (gone.length) out.push(`delete element ${T(f)} ${m} { ${gone.join(', ')} }`);
    const added = new Map([...now].filter(([k, v]) => was.get(k) !== v));
    if (added.size) out.push(`add element ${T(f)} ${m} { ${elementList(added)} }`);
  }
  for (const [c, rules] of to.chains) {
    const old = from.chains.get(c);
    if (old && same(old, rules)) continue;
    if (old) out.push(`flush chain ${T(f)} ${c}`);
    for (const r of rules) out.push(`add rule ${T(f)} ${c} ${r}`);
  }
  // Last: a chain can go once no map element or rule refers to it any more.
  for (const c of from.chains.keys()) if (!to.chains.has(c)) out.push(`flush chain ${T(f)} ${c}`, `delete chain ${T(f)} ${c}`);
  return out;
}

export function nftPayload(lines: string[]): string {
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export async function applyNft(payload: string): Promise<void> {
  if (payload) await run(['nft', '-f', '-'], { input: payload });
}

/**
 * The step of an operation. `whole*` render the complete states (every network), for the
 * fallback when an edit fails and for its undo.
 */
export function nftStep(from: NftRuleset, to: NftRuleset, whole: { from: () => NftRuleset; to: () => NftRuleset }, full = false): Step | null {
  const families: Family[] = [4, 6];
  const forward = nftPayload(families.flatMap((f) => (full ? wholeTable(f, to[f]) : tableEdits(f, from[f], to[f]))));
  if (!forward) return null;
  let applied = false;
  const rebuild = (rs: NftRuleset) => nftPayload(families.flatMap((f) => wholeTable(f, rs[f])));
  return {
    show: [`nft -f - <<'EOF'\n${forward}EOF`],
    async do() {
      await applyOrRebuild(forward, () => rebuild(whole.to()));
      applied = true;
    },
    async undo() {
      if (!applied) return;
      const back = nftPayload(families.flatMap((f) => tableEdits(f, to[f], from[f])));
      await applyOrRebuild(back, () => rebuild(whole.from()));
    },
  };
}

async function applyOrRebuild(edits: string, whole: () => string): Promise<void> {
  try {
    await applyNft(edits);
  } catch (e) {
    const all = whole();
    if (all === edits) throw e;
    await applyNft(all);
  }
}

// ---- reading back --------------------------------------------------------------------------

/** brnet's table of one family as the kernel has it, and who else lives there. */
export interface NftKernelTable {
  exists: boolean;
  chains: Map<string, string[]>;
  maps: Map<string, Map<string, string>>;
  /** Base chains: name -> "type/hook/priority/policy" (their rules are in `chains` too). */
  base: Map<string, string>;
  /** Instances named by the rules' comments (null: a comment of before instances). */
  instances: Set<string | null>;
  /** Rules brnet could not read back (an expression it never writes): a change by hand. */
  unreadable: string[];
}

export interface NftKernel {
  4: NftKernelTable;
  6: NftKernelTable;
  /** The policy of iptables-nft's FORWARD chain per family ("drop", "accept"), when there is one. */
  forwardPolicy: Record<Family, string | null>;
}

/**
 * brnet's tables as the kernel has them, one `nft -j list table` per family, side by side; a
 * table that does not exist is absent (nft says so at once). Asking for brnet's tables by name
 * costs what they hold: `nft list tables` would cost what the whole ruleset holds, iptables-nft's
 * included (200 ms on a host with a thousand published ports). null when there is no `nft` at
 * all: then nothing of brnet's can be there. (`nft -j -f -` would take both listings at once,
 * but it reads its JSON through /dev/stdin, which cannot be opened on the socket a child's
 * stdin is here.)
 */
export async function readNft(): Promise<NftKernel | null> {
  try {
    const lists = await Promise.all(([4, 6] as Family[]).map((f) => run(['nft', '-j', 'list', 'table', nftFamily(f), NFT_TABLE], { allowFail: true })));
    const text: string[] = [];
    for (const r of lists) {
      if (r.code === 0) text.push(r.stdout);
      else if (!/No such file or directory/.test(r.stderr)) throw environment(`cannot read the nftables table ${r.argv.slice(-2).join(' ')}: ${firstLine(r)}`);
    }
    return parseNftJson(text.join('\n'));
  } catch (e) {
    if (e instanceof Error && /`nft` not found/.test(e.message)) return null;
    throw e;
  }
}

const firstLine = (r: RunResult) => r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`;

const emptyKernelTable = (): NftKernelTable => ({ exists: false, chains: new Map(), maps: new Map(), base: new Map(), instances: new Set(), unreadable: [] });

/** `nft -j list ruleset`, read as input: anything that is not what brnet writes is reported, never used. */
export function parseNftJson(text: string): NftKernel {
  // One JSON document per command listed (`nft -j -f` prints one line per command).
  const items: unknown[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (e) {
      throw environment(`cannot read the output of nft -j: ${(e as Error).message}`);
    }
    const part = (doc as { nftables?: unknown })?.nftables;
    if (!Array.isArray(part)) throw environment('cannot read the output of nft -j: no "nftables" array');
    items.push(...part);
  }
  const out: NftKernel = { 4: emptyKernelTable(), 6: emptyKernelTable(), forwardPolicy: { 4: null, 6: null } };
  const fam = (x: unknown): Family | null => (x === 'ip' ? 4 : x === 'ip6' ? 6 : null);
  for (const item of items as Record<string, any>[]) {
    if (!item || typeof item !== 'object') continue;
    const [kind] = Object.keys(item);
    const o = kind ? item[kind] : null;
    if (!o || typeof o !== 'object') continue;
    const f = fam(o.family);
    if (f === null) continue;
    if (o.table !== NFT_TABLE && !(kind === 'table' && o.name === NFT_TABLE)) {
      // iptables-nft keeps iptables' filter table as `ip filter` / `ip6 filter`.
      if (kind === 'chain' && o.table === 'filter' && o.name === 'FORWARD' && typeof o.policy === 'string') out.forwardPolicy[f] = o.policy;
      continue;
    }
    const t = out[f];
    t.exists = true;
    if (kind === 'chain' && typeof o.name === 'string') {
      if (typeof o.hook === 'string') t.base.set(o.name, `${o.type}/${o.hook}/${o.prio}/${o.policy}`);
      t.chains.set(o.name, t.chains.get(o.name) ?? []);
    } else if (kind === 'map' && typeof o.name === 'string') {
      const elems = new Map<string, string>();
      for (const e of Array.isArray(o.elem) ? o.elem : []) {
        const [k, v] = Array.isArray(e) ? e : [];
        const target = v?.jump?.target;
        if (typeof k === 'string' && typeof target === 'string') elems.set(k, target);
        else t.unreadable.push(`an element of map ${o.name}`);
      }
      t.maps.set(o.name, elems);
    } else if (kind === 'rule' && typeof o.chain === 'string') {
      const text = ruleText(o.expr);
      const comment = typeof o.comment === 'string' ? o.comment : null;
      const mark = comment ? /^brnet(?:@([0-9a-f]{8}))?:/.exec(comment) : null;
      if (mark) t.instances.add(mark[1] ?? null);
      if (text === null) {
        t.unreadable.push(`a rule in chain ${o.chain}`);
        continue;
      }
      const full = comment ? `${text} comment "${comment}"` : text;
      (t.chains.get(o.chain) ?? t.chains.set(o.chain, []).get(o.chain)!).push(full);
    }
  }
  return out;
}

/**
 * One rule's expressions back to the text nft-rules.ts writes, for the vocabulary brnet uses;
 * null for anything else (which brnet never wrote).
 */
export function ruleText(expr: unknown): string | null {
  if (!Array.isArray(expr)) return null;
  const words: string[] = [];
  for (const e of expr as Record<string, any>[]) {
    const w = exprText(e);
    if (w === null) return null;
    words.push(w);
  }
  return words.join(' ');
}

function value(v: unknown): string | null {
  if (typeof v === 'string') return /^[\w.:/-]+$/.test(v) ? v : null;
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  const p = (v as { prefix?: { addr?: unknown; len?: unknown } })?.prefix;
  if (p && typeof p.addr === 'string' && typeof p.len === 'number' && /^[0-9a-f.:]+$/.test(p.addr)) return `${p.addr}/${p.len}`;
  return null;
}

function exprText(e: Record<string, any>): string | null {
  if (!e || typeof e !== 'object') return null;
  if ('match' in e) {
    const { left, op, right } = e.match ?? {};
    const neg = op === '!=' ? '!= ' : '';
    if (op !== '==' && op !== '!=' && op !== 'in') return null;
    if (left?.meta?.key === 'iifname' || left?.meta?.key === 'oifname') {
      return typeof right === 'string' && /^[\w.-]+$/.test(right) ? `${left.meta.key} ${neg}"${right}"` : null;
    }
    if (left?.meta?.key === 'l4proto') return right === 'ipv6-icmp' && !neg ? 'meta l4proto ipv6-icmp' : null;
    if (left?.ct?.key === 'state') {
      const states = (Array.isArray(right) ? right : [right]).filter((s): s is string => typeof s === 'string');
      if (states.length === 1 && states[0] === 'established' && !neg) return 'ct state established';
      return states.length === 2 && states.includes('established') && states.includes('related') ? 'ct state established,related' : null;
    }
    if (left?.fib) {
      const flags = Array.isArray(left.fib.flags) ? left.fib.flags : [left.fib.flags];
      return left.fib.result === 'type' && right === 'local' && flags.length === 1 && (flags[0] === 'saddr' || flags[0] === 'daddr') ? `fib ${flags[0]} type local` : null;
    }
    const pl = left?.payload;
    if (pl && typeof pl.protocol === 'string' && typeof pl.field === 'string') {
      const v = value(right);
      if (v === null) return null;
      if (pl.protocol === 'ip' && pl.field === 'protocol') return v === 'icmp' && !neg ? 'ip protocol icmp' : null;
      if (pl.protocol === 'icmpv6' && pl.field === 'type') return ND_TYPES.some((t) => t.nft === v) && !neg ? `icmpv6 type ${v}` : null;
      if (!['ip', 'ip6', 'tcp', 'udp', 'sctp'].includes(pl.protocol) || !['saddr', 'daddr', 'sport', 'dport'].includes(pl.field)) return null;
      return `${pl.protocol} ${pl.field} ${neg}${v}`;
    }
    return null;
  }
  if ('counter' in e) return 'counter';
  if ('accept' in e) return 'accept';
  if ('drop' in e) return 'drop';
  if ('return' in e) return 'return';
  if ('masquerade' in e) return 'masquerade';
  if ('jump' in e) return typeof e.jump?.target === 'string' && /^[\w-]+$/.test(e.jump.target) ? `jump ${e.jump.target}` : null;
  if ('vmap' in e) {
    const key = e.vmap?.key?.meta?.key;
    const data = e.vmap?.data;
    return (key === 'iifname' || key === 'oifname') && typeof data === 'string' && /^@[\w-]+$/.test(data) ? `${key} vmap ${data}` : null;
  }
  if ('snat' in e) {
    const a = value(e.snat?.addr);
    return a && e.snat?.port === undefined ? `snat to ${a}` : null;
  }
  if ('dnat' in e) {
    const a = value(e.dnat?.addr);
    const p = e.dnat?.port;
    if (!a || typeof p !== 'number') return null;
    return a.includes(':') ? `dnat to [${a}]:${p}` : `dnat to ${a}:${p}`;
  }
  return null;
}

/** Refuses (exit 5) when brnet's tables hold another instance's rules. */
export function refuseForeignNft(k: NftKernel, mine: string | null): void {
  const what: string[] = [];
  let other = '';
  for (const f of [4, 6] as Family[]) {
    for (const i of k[f].instances) {
      if (i !== null && i !== mine) {
        other = i;
        what.push(`nftables table ${nftFamily(f)} ${NFT_TABLE}`);
      }
    }
  }
  if (what.length) throw anotherInstance(other, [...new Set(what)]);
}

