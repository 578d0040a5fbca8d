// The state file's shape check: what it accepts, what it returns, and where it says a bad
// value is.
import { describe, expect, it } from 'vitest';
import { StateSchema } from '../../src/state/schema.ts';
import * as z from '../../src/validate/shape.ts';
import { fixtureState } from '../fixtures/state.ts';

const fails = (check: () => unknown) => {
  try {
    check();
  } catch (e) {
    expect(e).toBeInstanceOf(z.ShapeError);
    return (e as Error).message;
  }
  throw new Error('expected a ShapeError');
};

describe('state shape', () => {
  it('accepts what brnet writes and returns an equal value', () => {
    const state = fixtureState();
    const text = JSON.stringify(state);
    expect(StateSchema(JSON.parse(text))).toEqual(state);
  });

  it('drops fields it does not know', () => {
    const raw = JSON.parse(JSON.stringify(fixtureState()));
    raw.extra = 1;
    raw.networks[0].extra = { deep: true };
    const out = StateSchema(raw) as unknown as Record<string, unknown> & { networks: Record<string, unknown>[] };
    expect('extra' in out).toBe(false);
    expect('extra' in out.networks[0]!).toBe(false);
  });

  it('names the path and the problem', () => {
    const cases: [(raw: any) => void, string][] = [
      [(r) => (r.networks[1].icc = 1234), 'networks.1.icc: expected a boolean, got number'],
      [(r) => delete r.networks[0].bridge, 'networks.0.bridge: expected a string, got undefined'],
      [(r) => (r.networks[0].endpoints[0].ports[0].proto = 'icmp'), 'networks.0.endpoints.0.ports.0.proto: expected one of tcp, udp, sctp, got "icmp"'],
      [(r) => (r.networks[0].gatewayModeIpv4 = null), 'networks.0.gatewayModeIpv4: expected one of nat, nat-unprotected, routed, isolated, got null'],
      [(r) => (r.networks[0].labels = ['a']), 'networks.0.labels: expected an object, got an array'],
      [(r) => (r.networks[0].labels = { a: 1 }), 'networks.0.labels.a: expected a string, got number'],
      [(r) => (r.version = 2), 'version: expected 1, got 2'],
      [(r) => (r.networks = {}), 'networks: expected an array, got object'],
      [(r) => (r.config.defaultAddressPools = [{ base: '10.0.0.0/8', size: '24' }]), 'config.defaultAddressPools.0.size: expected a number, got string'],
    ];
    for (const [spoil, message] of cases) {
      const raw = JSON.parse(JSON.stringify(fixtureState()));
      expect(raw.networks[0].endpoints[0].ports.length).toBeGreaterThan(0);
      spoil(raw);
      expect(fails(() => StateSchema(raw))).toBe(message);
    }
    expect(fails(() => StateSchema(null))).toBe('(top level): expected an object, got null');
  });

  it('refuses a __proto__ key instead of letting it replace an object\'s prototype', () => {
    const raw = JSON.parse(JSON.stringify(fixtureState()).replace('"labels":{}', '"labels":{"__proto__":"x"}'));
    expect(fails(() => StateSchema(raw))).toMatch(/^networks\.\d+\.labels: a key named __proto__$/);
  });

  it('an enum lists its values', () => {
    const proto = z.oneOf(['tcp', 'udp']);
    expect(proto.options).toEqual(['tcp', 'udp']);
    expect(proto('udp')).toBe('udp');
    expect(fails(() => z.number(Number.NaN))).toBe('(top level): expected a number, got number');
  });
});
