// Pure endpoint logic: flag parsing, addresses, interface names, default routes, batch lines.
import { describe, expect, it } from 'vitest';
import { type AddFlags, assignAddress, chooseIfname, parseAdd, planDefaultRoutes } from '../../src/core/endpoint.ts';
import { defaultRouteOwners, nextSeq, routeFamilies } from '../../src/core/default-routes.ts';
import { freeVethName, hostAddLines, nsAddLines } from '../../src/net/veth.ts';
import { BrnetError } from '../../src/errors.ts';
import { parseIp } from '../../src/net/ipam.ts';
import { stableMac } from '../../src/net/names.ts';
import { parseDefaultRoutes, parseNetns } from '../../src/net/netns.ts';
import { type Endpoint, type Network, type State, emptyState } from '../../src/state/schema.ts';
import { ep as fixtureEp, net as fixtureNet } from '../fixtures/state.ts';

// The shared fixtures, with the names these tests expect.
const net = (o: Partial<Network> = {}): Network => fixtureNet('web', 'a', { bridge: 'br-web', ...o });
const ep = (o: Partial<Endpoint> = {}): Endpoint =>
  fixtureEp('app', '10.1.0.2/24', { netns: 'a', netnsPath: '/run/netns/a', hostIfname: 'veth0000001', created: '2026-01-01T00:00:01.000Z', ...o });

const state = (...networks: Network[]): State => ({ ...emptyState(), networks });
const ip = (s: string) => parseIp(s)!;

function fails(fn: () => unknown, exitCode: number, msg?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BrnetError);
    expect((e as BrnetError).exitCode).toBe(exitCode);
    if (msg) expect((e as BrnetError).message).toMatch(msg);
    return;
  }
  throw new Error('expected an error');
}

describe('parseNetns', () => {
  it('takes names, paths and pid:PID', () => {
    expect(parseNetns('app')).toEqual({ spec: 'app', path: '/run/netns/app', name: 'app' });
    expect(parseNetns('/var/run/netns/x')).toEqual({ spec: '/var/run/netns/x', path: '/var/run/netns/x', name: null });
    expect(parseNetns('pid:42')).toEqual({ spec: 'pid:42', path: '/proc/42/ns/net', name: null });
  });
  it('stores relative paths absolute', () => {
    expect(parseNetns('./ns/x').path).toBe(`${process.cwd()}/ns/x`);
  });
  it('refuses what would break an ip -batch line or is not a pid', () => {
    for (const bad of ['a b', '-x', '.', '..', '', 'a#b', 'pid:', 'pid:0', 'pid:12a', 'pid:-1']) fails(() => parseNetns(bad), 2);
    for (const bad of ['/tmp/a b', "/tmp/a'b", '/tmp/#x']) fails(() => parseNetns(bad), 2);
  });
});

describe('parseAdd', () => {
  const flags = (o: Partial<AddFlags> = {}): AddFlags => ({ netns: 'a', ...o });
  it('turns flags into a spec', () => {
    const s = parseAdd('web', 'app', flags({ ip: '10.1.0.9', ip6: 'FD00::9', mac: '02-AA-bb-cc-dd-ee', ifname: 'lan0', defaultRoute: false }));
    expect(s).toMatchObject({ name: 'app', ip: ip('10.1.0.9'), ip6: ip('fd00::9'), mac: '02:aa:bb:cc:dd:ee', ifname: 'lan0', defaultRoute: false, createNetns: false });
    expect(parseAdd('web', 'app', flags()).defaultRoute).toBe(true);
  });
  it('refuses bad names, addresses of the wrong family, bad MACs and interface names', () => {
    fails(() => parseAdd('web', '-app', flags()), 2, /endpoint name/);
    fails(() => parseAdd('web', 'app', flags({ ip: 'fd00::1' })), 2, /IPv6 address/);
    fails(() => parseAdd('web', 'app', flags({ ip6: '10.0.0.1' })), 2, /IPv4 address/);
    fails(() => parseAdd('web', 'app', flags({ ip: '10.0.0.1/24' })), 2);
    fails(() => parseAdd('web', 'app', flags({ mac: '01:00:00:00:00:01' })), 2, /multicast/);
    fails(() => parseAdd('web', 'app', flags({ ifname: 'sixteen-chars-xx' })), 2);
    fails(() => parseAdd('web', 'app', flags({ ifname: 'a:b' })), 2);
  });
});

describe('assignAddress', () => {
  it('hands out the lowest free address, skipping the gateway, aux addresses and other endpoints', () => {
    const n = net({
      ipv4: { subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: null, auxAddresses: { r: '10.1.0.3' }, allocated: false },
      endpoints: [ep({ ipv4: '10.1.0.2/24' })],
    });
    expect(assignAddress(n, 4, null)).toBe('10.1.0.4/24');
    expect(assignAddress(net(), 6, null)).toBeNull();
  });
  it('allocates from the ip-range', () => {
    const n = net({ ipv4: { subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.128/25', auxAddresses: {}, allocated: false } });
    expect(assignAddress(n, 4, null)).toBe('10.1.0.128/24');
  });
  it('handles IPv6, where the subnet-router anycast address is never given', () => {
    const n = net({ ipv6: { subnet: 'fd00:1::/64', gateway: 'fd00:1::1', ipRange: null, auxAddresses: {}, allocated: false } });
    expect(assignAddress(n, 6, null)).toBe('fd00:1::2/64');
    fails(() => assignAddress(n, 6, ip('fd00:1::')), 2, /network address/);
  });
  it('checks a requested address: inside, free, not reserved', () => {
    const n = net({
      ipv4: { subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.0/25', auxAddresses: { r: '10.1.0.9' }, allocated: false },
      endpoints: [ep({ name: 'other', ipv4: '10.1.0.2/24' })],
    });
    expect(assignAddress(n, 4, ip('10.1.0.77'))).toBe('10.1.0.77/24');
    fails(() => assignAddress(n, 4, ip('10.1.0.2')), 4, /used by endpoint other/);
    fails(() => assignAddress(n, 4, ip('10.1.0.1')), 4, /gateway/);
    fails(() => assignAddress(n, 4, ip('10.1.0.9')), 4, /aux address r/);
    fails(() => assignAddress(n, 4, ip('10.2.0.5')), 2, /outside the subnet/);
    fails(() => assignAddress(n, 4, ip('10.1.0.200')), 2, /outside the ip-range/);
    fails(() => assignAddress(n, 4, ip('10.1.0.0')), 2, /network address/);
    fails(() => assignAddress(net({ ipv4: null }), 4, ip('10.1.0.5')), 2, /has no IPv4/);
  });
  it('says when the range is full', () => {
    const n = net({ ipv4: { subnet: '10.1.0.0/30', gateway: '10.1.0.1', ipRange: null, auxAddresses: {}, allocated: false }, endpoints: [ep({ ipv4: '10.1.0.2/30' })] });
    fails(() => assignAddress(n, 4, null), 4, /no free IPv4 address/);
  });
});

describe('chooseIfname', () => {
  it('takes the lowest free <prefix>N', () => {
    expect(chooseIfname('eth', null, ['lo'], 'a')).toBe('eth0');
    expect(chooseIfname('eth', null, ['lo', 'eth0', 'eth2'], 'a')).toBe('eth1');
    expect(chooseIfname('p', null, ['p0', 'p1'], 'a')).toBe('p2');
  });
  it('checks a requested name against the namespace', () => {
    expect(chooseIfname('eth', 'lan0', ['lo', 'eth0'], 'a')).toBe('lan0');
    fails(() => chooseIfname('eth', 'eth0', ['lo', 'eth0'], 'a'), 4, /already exists in namespace a/);
  });
  it('never builds a name longer than 15 bytes', () => {
    const links = Array.from({ length: 10 }, (_, i) => `abcdefghijklmn${i}`);
    fails(() => chooseIfname('abcdefghijklmn', null, links, 'a'), 4);
  });
});

describe('default routes', () => {
  const v4 = net();
  const ds = net({ name: 'ds', ipv6: { subnet: 'fd00::/64', gateway: 'fd00::1', ipRange: null, auxAddresses: {}, allocated: false } });
  it('are for non-internal networks with a gateway in the family', () => {
    expect(routeFamilies(v4, ep())).toEqual([4]);
    expect(routeFamilies(ds, ep({ ipv6: 'fd00::2/64' }))).toEqual([4, 6]);
    expect(routeFamilies(net({ internal: true }), ep())).toEqual([]);
    expect(routeFamilies(net({ ipv4: { subnet: '10.1.0.0/24', gateway: null, ipRange: null, auxAddresses: {}, allocated: false } }), ep())).toEqual([]);
  });
  it('go to the first endpoint attached that wants one, family by family', () => {
    const a = ep({ name: 'a', created: '2026-01-01T00:00:01.000Z' });
    const b = ep({ name: 'b', ipv4: '10.1.0.3/24', ipv6: 'fd00::3/64', created: '2026-01-01T00:00:02.000Z' });
    const owners = defaultRouteOwners([
      { network: ds, endpoint: b },
      { network: v4, endpoint: a },
    ]);
    expect(owners.map((o) => [o.endpoint.name, o.family, o.gateway])).toEqual([
      ['a', 4, '10.1.0.1'],
      ['b', 6, 'fd00::1'],
    ]);
    // once a leaves, b carries both
    expect(defaultRouteOwners([{ network: ds, endpoint: b }]).map((o) => o.family)).toEqual([4, 6]);
    // an endpoint without defaultRoute carries nothing
    expect(defaultRouteOwners([{ network: ds, endpoint: { ...b, defaultRoute: false } }])).toEqual([]);
  });
  it('follow the attachment order, not the clock: one attached after the clock stepped back comes second', () => {
    const first = ep({ name: 'first', created: '2026-06-01T00:00:00.000Z', seq: 7 });
    const later = ep({ name: 'later', ipv4: '10.1.0.3/24', created: '2026-01-01T00:00:00.000Z', seq: 8 });
    const owners = defaultRouteOwners([
      { network: v4, endpoint: later },
      { network: v4, endpoint: first },
    ]);
    expect(owners.map((o) => o.endpoint.name)).toEqual(['first']);
    expect(nextSeq(state(net({ endpoints: [first, later] })))).toBe(9);
  });
  it('are planned against the state and the namespace', () => {
    const first = ep({ name: 'first' });
    const s = state(net({ endpoints: [first] }), ds);
    const newcomer = ep({ name: 'new', ipv4: '10.1.0.9/24', ipv6: 'fd00::9/64', created: '2026-01-02T00:00:00.000Z' });
    const view = { links: ['lo', 'eth0'], aliases: {}, defaultRoutes: [{ family: 4 as const, gateway: '10.1.0.1', dev: 'eth0' }] };
    // IPv4 is carried by `first` already: the newcomer takes IPv6 only
    const p = planDefaultRoutes(s, ds, newcomer, view);
    expect(p.defaultRoute).toBe(true);
    expect(p.routes.map((r) => [r.family, r.gateway])).toEqual([[6, 'fd00::1']]);
    // on a network that only offers what is taken, it carries nothing
    expect(planDefaultRoutes(s, v4, { ...newcomer, ipv6: null }, view)).toEqual({ defaultRoute: false, routes: [] });
    // --no-default-route
    expect(planDefaultRoutes(s, ds, { ...newcomer, defaultRoute: false }, view)).toEqual({ defaultRoute: false, routes: [] });
  });
  it('refuse to stack on a default route brnet did not add', () => {
    const view = { links: ['lo'], aliases: {}, defaultRoutes: [{ family: 6 as const, gateway: 'fe80::1', dev: 'wlan0' }] };
    fails(() => planDefaultRoutes(state(ds), ds, ep({ ipv6: 'fd00::2/64' }), view), 4, /IPv6 default route \(via fe80::1 dev wlan0\)/);
    expect(planDefaultRoutes(state(v4), v4, ep(), view).defaultRoute).toBe(true);
  });
  it('are read from `ip -j route show default table all`, main table only', () => {
    expect(
      parseDefaultRoutes([
        { dst: 'default', gateway: '10.1.0.1', dev: 'eth0' },
        { dst: 'default', gateway: 'fd00::1', dev: 'eth0', metric: 1024, pref: 'medium' },
        { dst: 'default', dev: 'wg0', metric: 1024, pref: 'medium' },
        { dst: 'default', dev: 'tun0' },
        { dst: 'default', gateway: '10.9.0.1', dev: 'eth1', table: '100' },
        { dst: 'default', type: 'unreachable', pref: 'medium' },
        { dst: '10.1.0.0/24', dev: 'eth0' },
      ]),
    ).toEqual([
      { family: 4, gateway: '10.1.0.1', dev: 'eth0' },
      { family: 6, gateway: 'fd00::1', dev: 'eth0' },
      { family: 6, gateway: null, dev: 'wg0' },
      { family: 4, gateway: null, dev: 'tun0' },
    ]);
  });
});

describe('batch lines', () => {
  it('create the veth with its peer inside the namespace, under its final name, MTU and MAC', () => {
    const e = ep({ hostIfname: 'veth1234567', netnsPath: '/proc/42/ns/net', mac: '02:11:22:33:44:55' });
    expect(hostAddLines(net({ mtu: 1400 }), e, null, '0a1b2c3d')).toEqual([
      'link add veth1234567 mtu 1400 type veth peer name eth0 netns /proc/42/ns/net mtu 1400 address 02:11:22:33:44:55',
      'link set dev veth1234567 alias brnet@0a1b2c3d:web:app master br-web',
      'link set dev veth1234567 type bridge_slave hairpin on',
      'link set dev veth1234567 up',
    ]);
    const named = ep({ hostIfname: 'veth1234567', netnsPath: '/run/netns/app', mac: '02:11:22:33:44:55' });
    expect(hostAddLines(net(), named, 'app', null)[0]).toBe('netns add app');
    expect(hostAddLines(net(), named, 'app', null)[1]).toBe('link add veth1234567 type veth peer name eth0 netns /run/netns/app address 02:11:22:33:44:55');
    // rootless, outside /run/netns: `ip netns add` cannot make it there (net/netns-own.ts does)
    const own = ep({ hostIfname: 'veth1234567', netnsPath: '/run/user/1000/brnet/netns/app', mac: '02:11:22:33:44:55' });
    expect(hostAddLines(net(), own, 'app', null)[0]).toBe('link add veth1234567 type veth peer name eth0 netns /run/user/1000/brnet/netns/app address 02:11:22:33:44:55');
  });
  it('configure the namespace side: marks, addresses, links up, routes', () => {
    const owner = { network: net(), endpoint: ep(), family: 4 as const, gateway: '10.1.0.1' };
    expect(nsAddLines(net(), ep({ ipv6: 'fd00::2/64' }), [owner], true, '0a1b2c3d')).toEqual([
      'link set dev eth0 alias brnet@0a1b2c3d:web:app',
      'addr add 10.1.0.2/24 dev eth0',
      'addr add fd00::2/64 dev eth0 nodad',
      'link set dev lo up',
      'link set dev eth0 up',
      'route add default via 10.1.0.1 dev eth0',
    ]);
    // no IPv6 address: no IPv6 link-local either (when the kernel has IPv6 at all)
    expect(nsAddLines(net(), ep(), [], true, null)[1]).toBe('link set dev eth0 addrgenmode none');
    expect(nsAddLines(net(), ep(), [], false, null)[1]).toBe('addr add 10.1.0.2/24 dev eth0');
    // a namespace brnet created: its loopback carries the token recorded for it
    const made = ep({ netnsCreated: true, netnsIdentity: { dev: 4, ino: 4026532000, start: null, token: 'feedc0de' } });
    expect(nsAddLines(net(), made, [], false, '0a1b2c3d').slice(0, 2)).toEqual([
      'link set dev eth0 alias brnet@0a1b2c3d:web:app',
      'link set dev lo alias brnet@0a1b2c3d:netns:feedc0de',
    ]);
  });
});

describe('names', () => {
  it('veth names are veth + 7 hex chars, avoiding existing devices', () => {
    const taken = new Set<string>();
    const name = freeVethName((n) => {
      const hit = taken.size < 3;
      taken.add(n);
      return hit;
    });
    expect(name).toMatch(/^veth[0-9a-f]{7}$/);
    expect(taken.size).toBe(4);
  });
  it('the derived MAC is stable, unicast and locally administered', () => {
    const m = stableMac(`endpoint:${'a'.repeat(64)}:app`);
    expect(stableMac(`endpoint:${'a'.repeat(64)}:app`)).toBe(m);
    expect(stableMac(`endpoint:${'a'.repeat(64)}:app2`)).not.toBe(m);
    expect(Number.parseInt(m.slice(0, 2), 16) & 0x03).toBe(0x02);
  });
});
