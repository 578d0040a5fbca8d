// `check` and `restore` for the nftables backend: brnet's tables as `nft -j` shows them
// (nftables.ts parseNftJson) against what the state renders (nft-rules.ts). A table that
// differs in anything is made again whole, in one transaction with the other family's.
import type { Step } from '../plan/steps.ts';
import { type NftKernel, applyNft, nftPayload, wholeTable } from './nftables.ts';
import { MAPS, NFT_TABLE, type NftRuleset, baseChains, hasTable, nftFamily } from './nft-rules.ts';
import type { Family } from './rules.ts';
import type { FirewallDrift, Foreign } from './types.ts';

export function compareNft(instance: string | null, desired: NftRuleset, k: NftKernel): { drift: FirewallDrift[]; foreign: Foreign[]; differs: Family[] } {
  const drift: FirewallDrift[] = [];
  const foreign: Foreign[] = [];
  const differs: Family[] = [];
  for (const f of [4, 6] as Family[]) {
    const name = `nftables table ${nftFamily(f)} ${NFT_TABLE}`;
    const t = k[f];
    const want = desired[f];
    const before = drift.length;
    const others = [...t.instances].filter((i): i is string => i !== null && i !== instance);
    if (others.length) {
      for (const i of new Set(others)) foreign.push({ what: name, instance: i });
      drift.push({ kind: 'foreign', what: `${name} holds rules of brnet instance ${others[0]}` });
      continue; // never this state's to repair
    }
    if (!hasTable(want)) {
      if (t.exists) drift.push({ kind: 'leftover', what: `${name} is not in the state` });
    } else if (!t.exists) {
      drift.push({ kind: 'missing', what: name });
    } else {
      const v = `IPv${f} nftables`;
      for (const b of baseChains()) {
        const decl = t.base.get(b.name);
        if (decl === undefined) drift.push({ kind: 'missing', what: `${v} base chain ${b.name}` });
        else if (decl !== b.read) drift.push({ kind: 'wrong', what: `${v} base chain ${b.name} is ${decl}, not ${b.read}` });
        else chainDrift(v, b.name, b.rules, t.chains.get(b.name) ?? [], drift);
      }
      for (const [c, rules] of want.chains) {
        const got = t.chains.get(c);
        if (!got) drift.push({ kind: 'missing', what: `${v} chain ${c}` });
        else chainDrift(v, c, rules, got, drift);
      }
      const base = new Set(baseChains().map((b) => b.name));
      for (const c of t.chains.keys()) if (!want.chains.has(c) && !base.has(c)) drift.push({ kind: 'leftover', what: `${v} chain ${c} is not in the state` });
      for (const m of MAPS) {
        const got = t.maps.get(m);
        const elems = want.maps.get(m) ?? new Map<string, string>();
        if (!got) {
          drift.push({ kind: 'missing', what: `${v} map ${m}` });
          continue;
        }
        for (const [ifname, chain] of elems) {
          if (got.get(ifname) !== chain) drift.push({ kind: 'missing', what: `${v} map ${m}: "${ifname}" : jump ${chain}` });
        }
        for (const [ifname, chain] of got) if (elems.get(ifname) !== chain) drift.push({ kind: 'leftover', what: `${v} map ${m}: "${ifname}" : jump ${chain}` });
      }
      for (const u of t.unreadable) drift.push({ kind: 'wrong', what: `${v}: ${u} is not one brnet writes` });
    }
    if (drift.length > before) differs.push(f);
  }
  return { drift, foreign, differs };
}

function chainDrift(v: string, chain: string, want: string[], got: string[], drift: FirewallDrift[]): void {
  const gotSet = new Set(got);
  const wantSet = new Set(want);
  const missing = want.filter((r) => !gotSet.has(r));
  const extra = got.filter((r) => !wantSet.has(r));
  for (const r of missing) drift.push({ kind: 'missing', what: `${v} rule in chain ${chain}: ${r}` });
  for (const r of extra) drift.push({ kind: 'leftover', what: `${v} rule in chain ${chain}: ${r}` });
  if (!missing.length && !extra.length && got.join('\n') !== want.join('\n')) drift.push({ kind: 'wrong', what: `${v} chain ${chain} has its rules out of order` });
}

/** One `nft -f` transaction that makes every table that differs whole again; none when all match. */
export function repairNft(desired: NftRuleset, families: Family[]): Step[] {
  const payload = nftPayload(families.flatMap((f) => wholeTable(f, desired[f])));
  if (!payload) return [];
  return [{ show: [`nft -f - <<'EOF'\n${payload}EOF`], do: () => applyNft(payload) }];
}
