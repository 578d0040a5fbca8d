// --filter KEY=VALUE of `network ls` and `network prune`, as Docker reads it: the values of
// one key are alternatives (labels excepted: every label given must match), different keys
// must all match.
import { invalid } from '../errors.ts';
import type { Network } from '../state/schema.ts';

export type FilterKey = 'name' | 'id' | 'label' | 'driver' | 'internal';
export type Filters = Map<FilterKey, string[]>;

const BOOL: Record<string, boolean> = { true: true, '1': true, false: false, '0': false };

const MATCH: Record<FilterKey, (n: Network, value: string) => boolean> = {
  // Docker matches part of the name or the ID, anywhere in it.
  name: (n, v) => n.name.includes(v),
  id: (n, v) => n.id.includes(v),
  label: (n, v) => {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    return Object.hasOwn(n.labels, key) && (eq < 0 || n.labels[key] === v.slice(eq + 1));
  },
  driver: (_n, v) => v === 'bridge',
  internal: (n, v) => n.internal === BOOL[v.toLowerCase()],
};

/** Parses every --filter given; `allowed` are the keys this command takes. */
export function parseFilters(given: string[], allowed: readonly FilterKey[]): Filters {
  const out: Filters = new Map();
  for (const f of given) {
    const eq = f.indexOf('=');
    const key = (eq < 0 ? f : f.slice(0, eq)) as FilterKey;
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (!allowed.includes(key)) throw invalid(`--filter ${f}: unknown filter ${JSON.stringify(key)}`, `filters: ${allowed.map((k) => `${k}=`).join(', ')}`);
    if (eq < 0 || !value) throw invalid(`--filter ${f}: the form is ${key}=VALUE`);
    if (key === 'label' && value.startsWith('=')) throw invalid(`--filter ${f}: the form is label=KEY or label=KEY=VALUE`);
    if (key === 'internal' && !(value.toLowerCase() in BOOL)) throw invalid(`--filter ${f}: internal is true or false`);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

export function matches(n: Network, filters: Filters): boolean {
  for (const [key, values] of filters) {
    // Docker asks for every label given, and for any one of the other keys' values.
    const hit = key === 'label' ? values.every((v) => MATCH.label(n, v)) : values.some((v) => MATCH[key](n, v));
    if (!hit) return false;
  }
  return true;
}
