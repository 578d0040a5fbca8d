// The record of sysctls brnet changed, and what `reset` makes of it, as data.
import { describe, expect, it } from 'vitest';
import { HOST_WIDE, recordSysctls, revertPlan, withSysctlsRecorded } from '../../src/core/sysctl-record.ts';
import { migrate } from '../../src/state/migrate.ts';
import { StateSchema, type Sysctls, emptyState } from '../../src/state/schema.ts';
import { fixtureState } from '../fixtures/state.ts';

const none: Sysctls = { changed: {}, incomplete: false };
const writes = (...w: [string, string, string][]) => new Map(w.map(([k, before, set]) => [k, { before, set }]));

describe('recording what brnet changed', () => {
  it('keeps the value before the first change, and the last value set', () => {
    const first = recordSysctls(none, writes(['net/ipv4/ip_forward', '0', '1']), new Set());
    expect(first.changed).toEqual({ 'net/ipv4/ip_forward': { before: '0', set: '1' } });
    // set to 0 by someone, and to 1 again by brnet: what it was before brnet is still 0
    const again = recordSysctls(first, writes(['net/ipv4/ip_forward', '1', '1']), new Set());
    expect(again.changed['net/ipv4/ip_forward']).toEqual({ before: '0', set: '1' });
  });

  it('leaves out the keys of bridges brnet created (they go with the bridge), keeps those of adopted ones', () => {
    const rec = recordSysctls(
      none,
      writes(['net/ipv4/conf/br-made/route_localnet', '0', '1'], ['net/ipv4/conf/lan0/route_localnet', '0', '1'], ['net/ipv6/conf/all/forwarding', '0', '1']),
      new Set(['br-made']),
    );
    expect(Object.keys(rec.changed).sort()).toEqual(['net/ipv4/conf/lan0/route_localnet', 'net/ipv6/conf/all/forwarding']);
  });

  it('nothing changed: the same object (the state is not rewritten for it)', () => {
    expect(recordSysctls(none, new Map(), new Set())).toBe(none);
    const s = emptyState();
    expect(withSysctlsRecorded(s, new Map())).toBe(s);
    const t = fixtureState();
    const made = t.networks.find((n) => n.bridgeCreated)!;
    expect(withSysctlsRecorded(t, writes([`net/ipv4/conf/${made.bridge}/route_localnet`, '0', '1']))).toBe(t);
  });

  it('a key that could name anything but a sysctl of brnet is never recorded', () => {
    expect(recordSysctls(none, writes(['net/ipv4/../../etc/x', '0', '1'], ['kernel/panic', '0', '1']), new Set())).toBe(none);
  });
});

describe('what reset puts back', () => {
  const rec: Sysctls = {
    changed: {
      'net/ipv4/ip_forward': { before: '0', set: '1' },
      'net/ipv6/conf/all/forwarding': { before: '0', set: '1' },
      'net/ipv4/conf/gone0/route_localnet': { before: '0', set: '1' },
    },
    incomplete: false,
  };

  it('a value still brnet\'s goes back; one changed since stays, and says so; a gone interface is skipped', () => {
    const now: Record<string, string> = { 'net/ipv4/ip_forward': '1', 'net/ipv6/conf/all/forwarding': '0' };
    expect(revertPlan(rec, (k) => now[k] ?? null)).toEqual({
      revert: [{ key: 'net/ipv4/ip_forward', from: '1', to: '0' }],
      kept: [{ key: 'net/ipv6/conf/all/forwarding', value: '0', why: 'changed since brnet set it to 1' }],
    });
  });

  it('a state older than the record: the host-wide values that are brnet\'s cannot be put back, and are named', () => {
    const old: Sysctls = { changed: { 'net/ipv4/ip_forward': { before: '0', set: '1' } }, incomplete: true };
    const now: Record<string, string> = { 'net/ipv4/ip_forward': '1', 'net/ipv6/conf/all/forwarding': '1', 'net/bridge/bridge-nf-call-iptables': '0' };
    const plan = revertPlan(old, (k) => now[k] ?? null, HOST_WIDE);
    expect(plan.revert).toEqual([{ key: 'net/ipv4/ip_forward', from: '1', to: '0' }]);
    expect(plan.kept.map((k) => k.key)).toEqual(['net/ipv6/conf/all/forwarding']);
    expect(plan.kept[0]!.why).toMatch(/older brnet/);
  });

  it('an empty record changes nothing', () => {
    expect(revertPlan(none, () => '1')).toEqual({ revert: [], kept: [] });
  });
});

describe('the record in the state file', () => {
  it('a state file from before the record: incomplete once the state dir was used, complete when never', () => {
    const used = StateSchema(migrate({ version: 1, instance: 'abcd0123', config: emptyState().config, networks: [] }, 'state.json'));
    expect(used.sysctls).toEqual({ changed: {}, incomplete: true });
    const fresh = StateSchema(migrate({ version: 1, config: emptyState().config, networks: [] }, 'state.json'));
    expect(fresh.sysctls).toEqual({ changed: {}, incomplete: false });
  });

  it('a key that is not a sysctl of brnet\'s, or a value that is not a number, makes the file invalid', () => {
    const bad = (sysctls: unknown) => () => StateSchema({ ...emptyState(), sysctls });
    expect(bad({ changed: { '../../etc/shadow': { before: '0', set: '1' } }, incomplete: false })).toThrow(/sysctls\.changed: expected keys that are a sysctl key/);
    expect(bad({ changed: { 'net/ipv4/ip_forward': { before: '0; rm', set: '1' } }, incomplete: false })).toThrow(/before: expected a sysctl value/);
    expect(StateSchema({ ...emptyState(), sysctls: rec() }).sysctls).toEqual(rec());
  });
});

function rec(): Sysctls {
  return { changed: { 'net/ipv6/conf/br-x.1/accept_ra': { before: '1', set: '0' } }, incomplete: false };
}
