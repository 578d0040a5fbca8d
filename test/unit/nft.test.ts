// The nftables backend as data: what it renders for the fixture state (a file snapshot), the
// transactions between two states, and `nft -j` read back. test/fixtures/nft/*.json is what
// nftables 1.0.6 listed after applying the fixture's whole tables in a private namespace, so
// reading it back must give exactly what was rendered.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareNft } from '../../src/firewall/nft-check.ts';
import { parseNftJson, ruleText, tableEdits, wholeTable } from '../../src/firewall/nftables.ts';
import { emptyTable, renderNft } from '../../src/firewall/nft-rules.ts';
import { emptyState } from '../../src/state/schema.ts';
import { ep, fixtureState } from '../fixtures/state.ts';
import { thrown } from '../helpers/errors.ts';

const listed = () =>
  ['ip', 'ip6'].map((f) => readFileSync(new URL(`../fixtures/nft/fixture-${f}.json`, import.meta.url), 'utf8').trim()).join('\n');

describe('nftables rendering', () => {
  it('renders the fixture state as whole tables', async () => {
    const rs = renderNft(fixtureState());
    await expect([...wholeTable(4, rs[4]), ...wholeTable(6, rs[6])].join('\n')).toMatchFileSnapshot('./__snapshots__/fixture.nft');
  });

  it('renders nothing for an empty state, and removes a table whole', () => {
    const rs = renderNft(emptyState());
    expect(rs[4].chains.size + rs[6].chains.size).toBe(0);
    expect(wholeTable(4, rs[4])).toEqual(['add table ip brnet', 'delete table ip brnet']);
  });

  it('changes only what differs between two states: a port is a few lines, whatever else exists', () => {
    const a = fixtureState();
    const web = a.networks[0]!;
    const b = { ...a, networks: [{ ...web, endpoints: [...web.endpoints, ep('new', '10.1.0.9/24', { ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 9999, containerPort: 99 }] })] }, ...a.networks.slice(1)] };
    const only = new Set(['web']);
    const edits = tableEdits(4, renderNft(a, only)[4], renderNft(b, only)[4]);
    expect(edits.every((l) => /^(flush chain|add rule) ip brnet (in|dnat|post)-/.test(l))).toBe(true);
    expect(edits.filter((l) => l.includes('dport 9999') || l.includes('dport 99 '))).toHaveLength(3);
    expect(tableEdits(4, renderNft(a)[4], renderNft(a)[4])).toEqual([]);
  });

  it('a network that goes takes its map elements first, then its chains', () => {
    const a = fixtureState();
    const b = { ...a, networks: a.networks.filter((n) => n.name !== 'quiet') };
    const edits = tableEdits(4, renderNft(a)[4], renderNft(b)[4]);
    const firstDelete = edits.findIndex((l) => l.startsWith('delete chain'));
    const lastElement = edits.map((l) => l.startsWith('delete element')).lastIndexOf(true);
    expect(firstDelete).toBeGreaterThan(lastElement);
    expect(edits.filter((l) => l.startsWith('delete chain')).length).toBeGreaterThan(2);
    expect(tableEdits(4, renderNft(b)[4], emptyTable())).toEqual(['add table ip brnet', 'delete table ip brnet']);
  });
});

describe('nft -j read back', () => {
  it('gives back exactly what was rendered: check is clean', () => {
    const state = fixtureState();
    const k = parseNftJson(listed());
    expect(k[4].exists && k[6].exists).toBe(true);
    expect(k[4].unreadable).toEqual([]);
    const { drift, foreign } = compareNft(state.instance, renderNft(state), k);
    expect(drift).toEqual([]);
    expect(foreign).toEqual([]);
  });

  it('names what differs, and another instance as foreign', () => {
    const state = fixtureState();
    const other = { ...state, networks: state.networks.slice(1) };
    const { drift } = compareNft(state.instance, renderNft(other), parseNftJson(listed()));
    expect(drift.map((d) => d.kind)).toContain('leftover');
    const theirs = { ...state, instance: '0a1b2c3d' };
    const r = compareNft(theirs.instance, renderNft(theirs), parseNftJson(listed().replace(/"comment": "brnet:/g, '"comment": "brnet@deadbeef:')));
    expect(r.foreign.map((f) => f.instance)).toContain('deadbeef');
  });

  it('reads only the expressions brnet writes; anything else is unreadable, never used', () => {
    expect(ruleText([{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'br-x' } }, { counter: { packets: 1, bytes: 2 } }, { accept: null }])).toBe('iifname "br-x" counter accept');
    expect(ruleText([{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'x" drop #' } }])).toBeNull();
    expect(ruleText([{ xt: { type: 'match', name: 'comment' } }])).toBeNull();
    expect(ruleText([{ dnat: { addr: 'fd00::2', port: 80 } }])).toBe('dnat to [fd00::2]:80');
    expect(ruleText('not a list')).toBeNull();
    expect(thrown(() => parseNftJson('{"nftables": 5}')).exitCode).toBe(5);
    expect(thrown(() => parseNftJson('not json')).exitCode).toBe(5);
  });
});
