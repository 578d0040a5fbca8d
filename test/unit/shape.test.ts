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
      [(r) => delete r.networks[0].bridge, 'networks.0.bridge: expected an interface name, got undefined'],
      [(r) => (r.networks[0].endpoints[0].ports[0].proto = 'icmp'), 'networks.0.endpoints.0.ports.0.proto: expected one of tcp, udp, sctp, got "icmp"'],
      [(r) => (r.networks[0].gatewayModeIpv4 = null), 'networks.0.gatewayModeIpv4: expected one of nat, nat-unprotected, routed, isolated, got null'],
      [(r) => (r.networks[0].labels = ['a']), 'networks.0.labels: expected an object, got an array'],
      [(r) => (r.networks[0].labels = { a: 1 }), 'networks.0.labels.a: expected a string, got number'],
      [(r) => (r.version = 2), 'version: expected 1, got 2'],
      [(r) => (r.networks = {}), 'networks: expected an array, got object'],
      [(r) => (r.config.defaultAddressPools = [{ base: '10.0.0.0/8', size: '24' }]), 'config.defaultAddressPools.0.size: expected a whole number from 0 to 128, got "24"'],
      // Values that would be words of an `ip -batch`, `iptables-restore` or nsenter line.
      [(r) => (r.networks[0].bridge = 'brz\nnetns add q\nnetns exec q /bin/sh -c id\n#'), 'networks.0.bridge: expected an interface name, got "brz\\nnetns add q\\nnetns exec q /bin/sh -c id…"'],
      [(r) => (r.networks[0].bridge = '+'), 'networks.0.bridge: expected an interface name, got "+"'],
      [(r) => (r.networks[0].trustedInterfaces = ['eth+']), 'networks.0.trustedInterfaces.0: expected an interface name, got "eth+"'],
      [(r) => (r.networks[0].endpoints[0].hostIfname = '-x'), 'networks.0.endpoints.0.hostIfname: expected an interface name, got "-x"'],
      [(r) => (r.networks[0].endpoints[0].netnsPath = '/run/netns/a b'), 'networks.0.endpoints.0.netnsPath: expected an absolute namespace path, got "/run/netns/a b"'],
      [(r) => (r.networks[0].endpoints[0].netns = 'a#b'), 'networks.0.endpoints.0.netns: expected a namespace name, path or pid:PID, got "a#b"'],
      [(r) => (r.networks[0].endpoints[0].mac = '02:00:00:00:00:02 up'), 'networks.0.endpoints.0.mac: expected a MAC address, got "02:00:00:00:00:02 up"'],
      [(r) => (r.networks[0].endpoints[0].ipv4 = '10.1.0.2/24 dev lo'), 'networks.0.endpoints.0.ipv4: expected an address with a prefix length, got "10.1.0.2/24 dev lo"'],
      [(r) => (r.networks[0].endpoints[0].ports[0].hostIp = '0.0.0.0 -j ACCEPT'), 'networks.0.endpoints.0.ports.0.hostIp: expected an IP address, got "0.0.0.0 -j ACCEPT"'],
      [(r) => (r.networks[0].endpoints[0].ports[0].hostPort = 70000), 'networks.0.endpoints.0.ports.0.hostPort: expected a whole number from 0 to 65535, got 70000'],
      [(r) => (r.networks[0].name = 'web\u0007'), 'networks.0.name: expected a name of 1-64 characters from A-Z a-z 0-9 _ . -, got "web\\u0007"'],
      [(r) => (r.networks[0].id = 'x'.repeat(64)), `networks.0.id: expected a network id of 64 hex digits, got "${'x'.repeat(44)}…"`],
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
