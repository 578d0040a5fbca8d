// Namespaces being created, noted before they are: a call killed between `ip netns add` and
// its state write (SIGKILL, an OOM kill) leaves a namespace that no endpoint names, and this
// note is how `check` finds it and `restore` removes it, without looking inside every
// namespace on the host. Each line is "NAME TOKEN"; the token is the one in the mark the
// namespace's loopback gets (net/marks.ts), so a namespace of the same name made by someone
// else is never taken for brnet's. No fsync: a namespace does not outlive a reboot either.
import { appendFileSync, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInstanceId } from '../net/marks.ts';
import { namedNetnsPath } from '../net/rootless.ts';
import { isNetnsName } from '../validate/values.ts';

export interface Pending {
  name: string;
  token: string;
}

const file = (dir: string) => join(dir, 'netns.pending');

export function notePending(dir: string, entries: readonly Pending[]): void {
  if (!entries.length) return;
  appendFileSync(file(dir), entries.map((e) => `${e.name} ${e.token}\n`).join(''), { mode: 0o600 });
}

/** The entries, each checked like input (the file is in the state dir, but anyone may edit it). */
export function readPending(dir: string): Pending[] {
  let text: string;
  try {
    text = readFileSync(file(dir), 'utf8');
  } catch {
    return [];
  }
  const out: Pending[] = [];
  for (const line of text.split('\n')) {
    const [name = '', token = '', extra] = line.split(' ');
    if (extra === undefined && isNetnsName(name) && isInstanceId(token)) out.push({ name, token });
  }
  return out;
}

/**
 * After a state write: entries the state now uses, or whose namespace is gone, are done with;
 * the rest (a killed call's namespace, until `restore` removes it) stay.
 */
export function settlePending(dir: string, usedTokens: ReadonlySet<string>): void {
  const all = readPending(dir);
  const keep = all.filter((e) => !usedTokens.has(e.token) && existsSync(namedNetnsPath(e.name)));
  if (keep.length !== all.length) rewritePending(dir, keep);
}

/** Forgets every entry (`reset`: whatever they named is gone, or was never brnet's). */
export function clearPending(dir: string): void {
  rewritePending(dir, []);
}

/** Keeps only `keep` (an empty list removes the file). */
function rewritePending(dir: string, keep: readonly Pending[]): void {
  try {
    if (!keep.length) return unlinkSync(file(dir));
    const tmp = `${file(dir)}.tmp`;
    writeFileSync(tmp, keep.map((e) => `${e.name} ${e.token}\n`).join(''), { mode: 0o600 });
    renameSync(tmp, file(dir));
  } catch {}
}

/**
 * A change of firewall backend in progress: noted before it starts, removed once the state
 * records the new backend (or `restore` has converged). While it is there, `check` and
 * `restore` look into the backend not in use as well; otherwise they need not (reading the
 * other backend costs a process or two on every check, for leftovers only a killed migration
 * can leave).
 */
const migrationFile = (dir: string) => join(dir, 'firewall.migrating');

export function noteMigration(dir: string): void {
  writeFileSync(migrationFile(dir), '', { mode: 0o600 });
}

export function migrationNoted(dir: string): boolean {
  return existsSync(migrationFile(dir));
}

export function clearMigration(dir: string): void {
  try {
    unlinkSync(migrationFile(dir));
  } catch {}
}
