// The state file's text: exactly the state, the settings on one line, a line per network.
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/state/migrate.ts';
import { StateSchema, emptyState } from '../../src/state/schema.ts';
import { serialize } from '../../src/state/store.ts';
import { fixtureState } from '../fixtures/state.ts';

describe('state file text', () => {
  it('parses back to the same state, one line per network', () => {
    const state = fixtureState();
    expect(state.networks.length).toBeGreaterThan(2);
    const text = serialize(state);
    expect(JSON.parse(text)).toEqual(state);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${JSON.stringify({ version: state.version, instance: state.instance, config: state.config, sysctls: state.sysctls }).slice(0, -1)},"networks":[`);
    expect(lines.slice(1, -2).map((l) => JSON.parse(l.replace(/,$/, '')).name)).toEqual(state.networks.map((n) => n.name));
    expect(lines.at(-2)).toBe(']}');
    expect(lines.at(-1)).toBe('');
  });

  it('an empty state is two lines', () => {
    const text = serialize(emptyState());
    expect(text.split('\n')).toHaveLength(2);
    expect(JSON.parse(text)).toEqual(emptyState());
  });
});

describe('a version-1 file written before instances, identities and the attachment order', () => {
  it('reads with no instance, unproven identities, and seq in the order of `created`', () => {
    const state = fixtureState();
    const raw = JSON.parse(serialize(state));
    delete raw.instance;
    for (const n of raw.networks) for (const e of n.endpoints) {
      delete e.netnsIdentity;
      delete e.seq;
    }
    // Listed out of order: the later one first.
    const eps = raw.networks[0].endpoints;
    eps[0].created = '2026-02-01T00:00:00.000Z';
    eps[1].created = '2026-01-01T00:00:00.000Z';
    const got = StateSchema(migrate(raw, 'state.json'));
    expect(got.instance).toBeNull();
    const all = got.networks.flatMap((n) => n.endpoints);
    expect(all.every((e) => e.netnsIdentity === null)).toBe(true);
    expect(all.map((e) => e.seq).sort((a, b) => a - b)).toEqual(all.map((_, i) => i + 1));
    expect(got.networks[0]!.endpoints[1]!.seq).toBeLessThan(got.networks[0]!.endpoints[0]!.seq);
  });
});
