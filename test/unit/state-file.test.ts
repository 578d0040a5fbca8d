// The state file's text: exactly the state, the settings on one line, a line per network.
import { describe, expect, it } from 'vitest';
import { emptyState } from '../../src/state/schema.ts';
import { serialize } from '../../src/state/store.ts';
import { fixtureState } from '../fixtures/state.ts';

describe('state file text', () => {
  it('parses back to the same state, one line per network', () => {
    const state = fixtureState();
    expect(state.networks.length).toBeGreaterThan(2);
    const text = serialize(state);
    expect(JSON.parse(text)).toEqual(state);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${JSON.stringify({ version: state.version, instance: state.instance, config: state.config }).slice(0, -1)},"networks":[`);
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
