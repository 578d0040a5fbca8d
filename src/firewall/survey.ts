// What else the host's firewall holds, for `brnet doctor`: which iptables variant `iptables`
// is (nft or legacy), what the other variant holds (its rules and policies filter the same
// packets, unseen by the variant in use: a legacy FORWARD policy of DROP drops traffic that
// every nft rule accepts), and the nftables tables by name (other managers' own tables).
// Read only; nothing here loads a kernel module: the other variant is read only where its
// kernel side is already there.
import { existsSync } from 'node:fs';
import { run } from '../net/exec.ts';
import type { Family } from './rules.ts';

export type Variant = 'nft' | 'legacy';

/** `iptables -V`: "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)"; old ones say neither (legacy). */
export function parseVariant(text: string): { version: string; variant: Variant } | null {
  const m = /^ip6?tables v(\S+)(?: \(([^)]+)\))?/m.exec(text);
  if (!m) return null;
  return { version: m[1] as string, variant: m[2] === 'nf_tables' ? 'nft' : 'legacy' };
}

export interface SaveSummary {
  /** Built-in chains whose policy is not ACCEPT: "filter/FORWARD DROP". */
  policies: { table: string; chain: string; policy: string }[];
  /** Rules per table/chain. */
  rules: Map<string, number>;
  /** Every chain of every table, "table/chain". */
  chains: Set<string>;
}

/** The parts of an `iptables-save` text that say whether it filters anything. */
export function summarizeSave(text: string): SaveSummary {
  const out: SaveSummary = { policies: [], rules: new Map(), chains: new Set() };
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(':')) {
      const [chain = '', policy = '-'] = line.slice(1).split(' ');
      out.chains.add(`${table}/${chain}`);
      if (policy !== '-' && policy !== 'ACCEPT') out.policies.push({ table, chain, policy });
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1] ?? '';
      const key = `${table}/${chain}`;
      out.rules.set(key, (out.rules.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/** `nft list tables`: "inet firewalld", "ip libvirt_network"… */
export function parseTables(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^table (\S+ \S+)/.exec(l.trim())?.[1])
    .filter((t): t is string => Boolean(t));
}

/** Is `cmd` an executable on PATH: looked up without starting anything. */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => d && existsSync(`${d}/${cmd}`));
}

export interface Survey {
  /** null: no iptables installed. */
  inUse: { version: string; variant: Variant } | null;
  /** The other variant's rules per family; null where it is not installed or holds nothing. */
  other: { variant: Variant; family: Family; summary: SaveSummary }[];
  /** null: `nft` is not installed, or nf_tables is not loaded. */
  nftTables: string[] | null;
}

/**
 * `nftLoaded`: nf_tables is there already (asking `nft` or iptables-nft for their tables
 * would load the module otherwise). The processes run side by side: `iptables -V`, then the other variant's saves and `nft list tables`. */
export async function surveyFirewall(opts: { nftLoaded: boolean }): Promise<Survey> {
  const { nftLoaded } = opts;
  const tables = nftLoaded && onPath('nft') ? run(['nft', 'list', 'tables'], { allowFail: true }).then((r) => (r.code === 0 ? parseTables(r.stdout) : null), () => null) : Promise.resolve(null);
  const inUse = onPath('iptables') ? await run(['iptables', '-V'], { allowFail: true }).then((r) => parseVariant(r.stdout + r.stderr), () => null) : null;
  const otherVariant: Variant = inUse?.variant === 'legacy' ? 'nft' : 'legacy';
  const saves = ([4, 6] as Family[]).map(async (family) => {
    const cmd = `${family === 4 ? 'iptables' : 'ip6tables'}-${otherVariant}-save`;
    // The legacy tables exist once ip_tables is loaded and a table was used in this namespace.
    const present = otherVariant === 'legacy' ? existsSync(family === 4 ? '/proc/net/ip_tables_names' : '/proc/net/ip6_tables_names') : nftLoaded;
    if (!present || !onPath(cmd)) return null;
    const r = await run([cmd], { allowFail: true }).catch(() => null);
    if (!r || r.code !== 0) return null;
    return { variant: otherVariant, family, summary: summarizeSave(r.stdout) };
  });
  const other = (await Promise.all(saves)).filter((x): x is NonNullable<typeof x> => x !== null);
  return { inUse, other, nftTables: await tables };
}

/** The built-in FORWARD chain of the variant in use: its policy and rules, and which are not brnet's. */
export interface ForwardChain {
  policy: string;
  /** Rule specs in order (after `-A FORWARD`). */
  rules: string[];
}

export function parseForward(text: string): ForwardChain {
  const out: ForwardChain = { policy: 'ACCEPT', rules: [] };
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    if (table !== 'filter') continue;
    if (line.startsWith(':FORWARD ')) out.policy = line.split(' ')[1] ?? 'ACCEPT';
    else if (line.startsWith('-A FORWARD ')) out.rules.push(line.slice('-A FORWARD '.length));
  }
  return out;
}

/** A rule brnet wrote: it carries brnet's mark. */
export const isBrnetRule = (spec: string): boolean => /--comment "?brnet[@:]/.test(spec) || /--comment "?brnet"?( |$)/.test(spec);

/** null when iptables is not installed (nothing filters in its FORWARD chain then). */
export async function readForward(f: Family): Promise<ForwardChain | null> {
  const cmd = f === 4 ? 'iptables-save' : 'ip6tables-save';
  if (!onPath(cmd)) return null;
  const r = await run([cmd, '-t', 'filter']);
  return parseForward(r.stdout);
}
