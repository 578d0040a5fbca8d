// The one firewall interface the core calls: change (from one state to the next), compare
// (for `check`), repair (for `restore`). Behind it, two backends that render the same traffic
// semantics: iptables (rules.ts, iptables.ts, iptables-check.ts) and nftables (nft-rules.ts,
// nftables.ts, nft-check.ts); the setting `firewall-backend` says which one holds the rules.
// A family turned off (`iptables false`) renders no rules, which is the null backend. Nothing
// outside src/firewall/ parses `iptables-save` or `nft -j`, or builds their payloads.
//
// The backend that is not in use is compared with an empty rule set: whatever it still holds
// of brnet's (after a migration that was interrupted) is a leftover that `restore` removes.
// iptables is always read (the nftables backend needs its FORWARD policy anyway); nftables,
// when not in use, only while a change of backend is noted as not finished.
import { type Step, inOrder } from '../plan/steps.ts';
import type { FirewallBackend, State } from '../state/schema.ts';
import { type KernelRules, firewallStep, forwardAcceptsStep } from './iptables.ts';
import { compareIptables, repairIptables } from './iptables-check.ts';
import { compareNft, repairNft } from './nft-check.ts';
import { type NftKernel, nftStep, refuseForeignNft } from './nftables.ts';
import { emptyTable, hasTable, renderNft } from './nft-rules.ts';
import { type Family, type Ruleset, renderRules } from './rules.ts';
import type { FirewallDrift, Foreign } from './types.ts';

export type { FirewallDrift, Foreign } from './types.ts';

/** How the firewall reads the kernel: the host view's readers (core/host.ts), each run once per call. */
export interface FirewallReaders {
  iptables(f: Family): Promise<KernelRules>;
  /** null when nftables cannot be read at all (no `nft`): then it holds nothing of brnet's. */
  nftables(): Promise<NftKernel | null>;
  /** A change of backend was started and not recorded: the one not in use may hold leftovers. */
  migrating?(): boolean;
}

const backendOf = (s: State): FirewallBackend => s.config.firewallBackend;

/** A state with the same networks and no rules at all: what a backend not in use should hold. */
const noRules = (s: State): State => ({ ...s, config: { ...s.config, iptables: false, ip6tables: false } });

/**
 * The step that moves the kernel from `from` to `to`, rendering only the networks in `only`
 * (undefined: all). Switching backends installs every rule in the new one first, then
 * removes the old one's: traffic is filtered and translated throughout.
 */
export async function firewallChange(from: State, to: State, read: FirewallReaders, opts: { only?: ReadonlySet<string>; full?: boolean } = {}): Promise<Step | null> {
  if (backendOf(from) !== backendOf(to)) {
    const install = await backendChange(to, noRules(to), to, read, { full: true });
    const remove = await backendChange(from, from, noRules(from), read, {});
    return inOrder([install, remove]);
  }
  return backendChange(to, from, to, read, opts);
}

/** One backend's step from `from` to `to` (the backend is `which`'s). */
async function backendChange(which: State, from: State, to: State, read: FirewallReaders, opts: { only?: ReadonlySet<string>; full?: boolean }): Promise<Step | null> {
  if (backendOf(which) === 'iptables') {
    return firewallStep(renderRules(from, opts.only), renderRules(to, opts.only), { readKernel: read.iptables, full: opts.full });
  }
  const a = renderNft(from, opts.only);
  const b = renderNft(to, opts.only);
  const firstOrLast = ([4, 6] as Family[]).filter((f) => opts.full || hasTable(a[f]) !== hasTable(b[f]));
  const accepts: (Step | null)[] = [];
  if (firstOrLast.length) {
    // Meeting the tables for the first time (or for the last): another state dir's are refused,
    // and iptables' FORWARD policy says whether brnet's bridges need accepting there too.
    const k = await read.nftables();
    if (k) refuseForeignNft(k, to.instance);
    for (const f of firstOrLast) {
      const ipt = await read.iptables(f).catch(missingTool);
      if (ipt) accepts.push(forwardAcceptsStep(f, ipt, hasTable(b[f]) && ipt.forwardPolicy === 'DROP', to.instance));
    }
  }
  const tables = nftStep(a, b, { from: () => renderNft(from), to: () => renderNft(to) }, opts.full);
  // Accepted in FORWARD only once brnet's own rules filter: added after the tables, removed before.
  return inOrder(a[4].chains.size + a[6].chains.size === 0 || opts.full ? [tables, ...accepts] : [...accepts, tables]);
}

export interface FirewallComparison {
  drift: FirewallDrift[];
  foreign: Foreign[];
  /** The steps that make the kernel hold exactly the rules of `state` (the networks to repair). */
  repair(state: State): Step[];
}

/**
 * The kernel's rules against the state's, for both backends: the one in use against the
 * state, the other against nothing. Reads only what can hold brnet's rules: the families
 * turned on, for iptables; nftables only where `nft` is installed.
 */
export async function firewallCompare(state: State, read: FirewallReaders): Promise<FirewallComparison> {
  const useNft = backendOf(state) === 'nftables';
  const families = [4, 6].filter((f) => (f === 4 ? state.config.iptables : state.config.ip6tables) || useNft) as Family[];
  // Every reader starts at once: the processes run side by side. nftables, when not in use,
  // only after a change of backend that was not recorded (see state/journal.ts).
  const nftRead = useNft || read.migrating?.() ? read.nftables() : Promise.resolve(null);
  const ipt = await Promise.all(([4, 6] as Family[]).map((f) => (families.includes(f) ? read.iptables(f).catch(missingTool) : Promise.resolve(null))));
  const iptKernel = { 4: ipt[0] ?? null, 6: ipt[1] ?? null } as Record<Family, KernelRules | null>;
  const nft = await nftRead;
  const iptDesired = (s: State): Ruleset => renderRules(useNft ? noRules(s) : s);
  const nftDesired = (s: State) => (useNft ? renderNft(s) : { 4: emptyTable(), 6: emptyTable(), instance: s.instance });
  // The nftables backend under a FORWARD policy of DROP: brnet's accepts there (forwardAccepts).
  const accepts = (s: State) => {
    const d = nftDesired(s);
    const want = (f: Family) => useNft && iptKernel[f]?.forwardPolicy === 'DROP' && hasTable(d[f]);
    return { 4: want(4), 6: want(6) } as Record<Family, boolean>;
  };
  const a = compareIptables(state, iptDesired(state), iptKernel, accepts(state));
  const b = nft ? compareNft(state.instance, nftDesired(state), nft) : { drift: [], foreign: [], differs: [] };
  return {
    drift: [...a.drift, ...b.drift],
    foreign: [...a.foreign, ...b.foreign],
    repair(s: State): Step[] {
      const ipt = repairIptables(s.instance, iptDesired(s), iptKernel, accepts(s));
      // nftables tables are made again whole: every family whose table differs from what `s` renders.
      const tables = nft ? repairNft(nftDesired(s), compareNft(s.instance, nftDesired(s), nft).differs) : [];
      // The backend in use first: its rules are in place before the other one's go.
      return useNft ? [...tables, ...ipt] : [...ipt, ...tables];
    },
  };
}

/** An iptables that is not installed holds none of brnet's rules (an nftables-only host). */
function missingTool(e: unknown): null {
  if (e instanceof Error && /not found/.test(e.message)) return null;
  throw e;
}
