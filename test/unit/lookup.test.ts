// Naming a network: by name, full ID or unique ID prefix, as data.
import { describe, expect, it } from 'vitest';
import { findNetwork, resolveNetwork } from '../../src/core/lookup.ts';
import { BrnetError } from '../../src/errors.ts';
import { type Network, type State, emptyState } from '../../src/state/schema.ts';
import { net } from '../fixtures/state.ts';

const withId = (name: string, id: string): Network => net(name, '0', { id });
const state = (...networks: Network[]): State => ({ ...emptyState(), networks });
const web = withId('web', `8f4d45dd4d82${'1'.repeat(52)}`);
const db = withId('db', `8f4d99aa0000${'2'.repeat(52)}`);
const beef = withId('beef', `0123${'3'.repeat(60)}`);
const s = state(web, db, beef);

function error(fn: () => unknown): BrnetError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BrnetError);
    return e as BrnetError;
  }
  throw new Error('expected an error');
}

describe('resolveNetwork', () => {
  it.each([
    ['web', 'web'],
    [web.id, 'web'],
    ['8f4d45dd4d82', 'web'],
    ['8f4d4', 'web'],
    ['8f4d9', 'db'],
    ['0123', 'beef'],
    ['beef', 'beef'],
  ])('%s is %s', (ref, name) => {
    expect(resolveNetwork(s, ref)?.name).toBe(name);
  });

  it.each([['nope'], ['8f4'], ['8F4D45'], ['dead'], [`${web.id}0`], ['']])('%s is no network', (ref) => {
    expect(resolveNetwork(s, ref)).toBeUndefined();
    expect(error(() => findNetwork(s, ref)).exitCode).toBe(3);
  });

  it('an ambiguous prefix is bad input (2) naming every candidate', () => {
    const e = error(() => resolveNetwork(s, '8f4d'));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('network ID prefix 8f4d is ambiguous: it matches web (8f4d45dd4d82), db (8f4d99aa0000)');
    expect(e.hint).toBeTruthy();
  });

  it('a name wins over an ID prefix that is also a name', () => {
    const hex = withId('8f4d', `ffff${'4'.repeat(60)}`);
    expect(resolveNetwork(state(web, db, hex), '8f4d')?.name).toBe('8f4d');
    // and over another network's full ID
    const twin = withId(web.id, `eeee${'5'.repeat(60)}`);
    expect(resolveNetwork(state(web, twin), web.id)).toBe(twin);
  });
});
