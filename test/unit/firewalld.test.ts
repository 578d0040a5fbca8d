// firewalld's replies as busctl prints them, what check makes of them, and which events the
// watcher counts as news: all as data.
import { describe, expect, it } from 'vitest';
import { type FirewalldView, firewalldDrift, firewalldStep, parseReply, zoneOf } from '../../src/firewall/firewalld.ts';
import { busNews, removesFromBrnetTables } from '../../src/core/watch.ts';

const zoneReply =
  '{"type":"a{sv}","data":[{"short":{"type":"s","data":"brnet"},"target":{"type":"s","data":"ACCEPT"},"interfaces":{"type":"as","data":["br-aaa","bad name","br-bbb",7]}}]}';

const view = (over: Partial<{ rt: string[] | null; perm: string[] | null; policy: boolean; owned: boolean }> = {}): FirewalldView => {
  const rt = over.rt === undefined ? ['br-aaa'] : over.rt;
  const perm = over.perm === undefined ? ['br-aaa'] : over.perm;
  return {
    runtime: { zone: rt ? { target: 'ACCEPT', interfaces: rt } : null, policy: over.policy ?? true },
    permanent: {
      zone: perm ? { target: 'ACCEPT', interfaces: perm, path: '/org/fedoraproject/FirewallD1/config/zone/3', owned: over.owned ?? true } : null,
      policy: over.policy === false ? null : { path: '/org/fedoraproject/FirewallD1/config/policy/1', owned: over.owned ?? true },
    },
  };
};
const nothing = async () => {};

describe('firewalld replies', () => {
  it('keeps only interface names from a zone, whatever else comes', () => {
    expect(zoneOf(parseReply(zoneReply)![0])).toEqual({ target: 'ACCEPT', interfaces: ['br-aaa', 'br-bbb'] });
    expect(zoneOf({ interfaces: { type: 's', data: 'br-aaa' } })).toEqual({ target: '', interfaces: [] });
  });
  it('an empty reply is a method without a result; anything but JSON with data is refused', () => {
    expect(parseReply('')).toEqual([]);
    expect(parseReply('not json')).toBeNull();
    expect(parseReply('{"type":"s"}')).toBeNull();
  });
});

describe('what check reports', () => {
  it('nothing when every bridge is bound at runtime and permanently', () => {
    expect(firewalldDrift(view(), ['br-aaa'])).toEqual([]);
    expect(firewalldDrift(null, ['br-aaa'])).toEqual([]);
  });
  it('a bridge missing from the zone, at runtime or only permanently', () => {
    expect(firewalldDrift(view({ rt: [] }), ['br-aaa'])).toEqual([{ kind: 'missing', what: 'bridge br-aaa in firewalld zone brnet' }]);
    expect(firewalldDrift(view({ perm: [] }), ['br-aaa'])).toEqual([{ kind: 'missing', what: 'bridge br-aaa in firewalld zone brnet (permanent configuration)' }]);
  });
  it('a missing zone and policy', () => {
    const kinds = firewalldDrift(view({ rt: null, perm: null, policy: false }), ['br-aaa']).map((d) => d.what);
    expect(kinds).toEqual(['firewalld zone brnet', 'firewalld policy brnet-forwarding', 'firewalld zone brnet (permanent configuration)', 'firewalld policy brnet-forwarding (permanent configuration)']);
  });
  it("zone and policy brnet made, with no network left, are leftovers; someone else's are not", () => {
    expect(firewalldDrift(view({ rt: [], perm: [] }), []).map((d) => d.kind)).toEqual(['leftover', 'leftover']);
    expect(firewalldDrift(view({ rt: [], perm: [], owned: false }), [])).toEqual([]);
  });
});

describe('the step', () => {
  it('binds a new bridge without a reload', () => {
    const s = firewalldStep(view(), ['br-aaa', 'br-new'], [], nothing)!;
    expect(s.reloads).toBe(false);
    expect(s.step.show).toEqual(['firewalld: bind br-new to zone brnet (permanent and runtime)']);
  });
  it('makes zone and policy with a reload when they are missing', () => {
    const s = firewalldStep(view({ rt: null, perm: null, policy: false }), ['br-aaa'], [], nothing)!;
    expect(s.reloads).toBe(true);
    expect(s.step.show.at(-1)).toMatch(/reload, then put back brnet's rules/);
  });
  it('removes its own zone and policy with the last bridge, not one made by someone else', () => {
    expect(firewalldStep(view(), [], ['br-aaa'], nothing)!.step.show).toEqual([
      'firewalld: unbind br-aaa from zone brnet',
      'firewalld: remove zone brnet',
      'firewalld: remove policy brnet-forwarding',
      'firewalld: reload',
    ]);
    expect(firewalldStep(view({ owned: false }), [], ['br-aaa'], nothing)!.step.show).toEqual(['firewalld: unbind br-aaa from zone brnet']);
  });
  it('nothing to do is no step', () => {
    expect(firewalldStep(view(), ['br-aaa'], [], nothing)).toBeNull();
    expect(firewalldStep(null, ['br-aaa'], [], nothing)).toBeNull();
  });
});

describe('what the watcher counts as news', () => {
  it.each([
    ['delete rule ip filter BRNET-FORWARD handle 63', true],
    ['delete table ip nat', true],
    ['delete chain ip6 raw BRNET-RAW', true],
    ['delete table ip brnet', true],
    ['flush ruleset', true],
    ['add rule ip filter BRNET-FORWARD iifname "br-x" accept', false],
    ['delete rule inet firewalld filter_FORWARD handle 5', false],
    ['# new generation 127 by process 31929 (iptables)', false],
  ])('%s → %s', (line, news) => expect(removesFromBrnetTables(line)).toBe(news));

  it('firewalld reloaded, started, stopped; nothing else', () => {
    const owner = (a: string, b: string) => JSON.stringify({ member: 'NameOwnerChanged', payload: { type: 'sss', data: ['org.fedoraproject.FirewallD1', a, b] } });
    expect(busNews(JSON.stringify({ member: 'Reloaded', payload: { data: [] } }))).toBe('reloaded');
    expect(busNews(owner('', ':1.6'))).toBe('started');
    expect(busNews(owner(':1.0', ''))).toBe('stopped');
    expect(busNews(JSON.stringify({ member: 'NameOwnerChanged', payload: { data: ['org.example', '', ':1.2'] } }))).toBeNull();
    expect(busNews('Monitoring bus message stream.')).toBeNull();
  });
});
