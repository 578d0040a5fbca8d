import { describe, expect, it } from 'vitest';
import { type CreateFlags, normalizeOptionKey, parseCreate } from '../../src/core/network-spec.ts';
import { applySetting, parsePools } from '../../src/core/config.ts';
import { emptyState } from '../../src/state/schema.ts';
import { checkIfname, checkObjectName, parseBool, parseMac, stableMac } from '../../src/net/names.ts';

const ok = (flags: CreateFlags, name = 'n') => parseCreate(name, flags);
const fails = (flags: CreateFlags, re: RegExp, name = 'n') => {
  let err: any;
  try {
    parseCreate(name, flags);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${JSON.stringify(flags)} to fail`).toBeDefined();
  expect(err.exitCode).toBe(2);
  expect(err.message).toMatch(re);
};

describe('parseCreate', () => {
  it('defaults: IPv4 only, nat, icc, masquerade, eth prefix', () => {
    const s = ok({});
    expect(s.ipv4).toEqual({ subnet: null, gateway: null, ipRange: null, aux: {} });
    expect(s.ipv6).toBeNull();
    expect(s).toMatchObject({ internal: false, icc: true, masquerade: true, gatewayModeIpv4: 'nat', gatewayModeIpv6: 'nat', ifacePrefix: 'eth', mtu: null });
  });

  it.each([
    [{ opt: ['com.docker.network.bridge.enable_icc=false'] }, { icc: false }],
    [{ opt: ['.bridge.enable_ip_masquerade=F'] }, { masquerade: false }],
    [{ opt: ['com.docker.network.bridge.name=br0'] }, { bridgeName: 'br0' }],
    [{ opt: ['com.docker.network.driver.mtu=9000'] }, { mtu: 9000 }],
    [{ opt: ['.container_iface_prefix=net'] }, { ifacePrefix: 'net' }],
    [{ opt: ['.bridge.gateway_mode_ipv4=routed'] }, { gatewayModeIpv4: 'routed' }],
    [{ opt: ['.bridge.inhibit_ipv4=TRUE'] }, { inhibitIpv4: true }],
    [{ opt: ['.bridge.host_binding_ipv4=127.0.0.1'] }, { hostBindingIp: '127.0.0.1' }],
    [{ opt: ['.host_ipv4=192.0.2.1'] }, { snatIpv4: '192.0.2.1' }],
    [{ opt: ['.bridge.trusted_host_interfaces=eth0:eth1'] }, { trustedInterfaces: ['eth0', 'eth1'] }],
    [{ opt: ['.enable_icc=1'.replace('.enable_icc', '.bridge.enable_icc')], icc: true }, { icc: true }],
    [{ opt: ['.bridge.enable_icc=true'], icc: false }, { icc: false }], // the flag wins
  ] as [CreateFlags, object][])('option %j', (flags, want) => {
    expect(ok(flags)).toMatchObject(want);
  });

  it('an IPv6 subnet implies --ipv6; -o enable_ipv6 works too', () => {
    expect(ok({ subnet: ['fd00:5::/64'] }).ipv6?.subnet).not.toBeNull();
    expect(ok({ opt: ['com.docker.network.enable_ipv6=true'] }).ipv6).not.toBeNull();
    expect(ok({ ipv6: true, ipv4: false }).ipv4).toBeNull();
  });

  it('matches gateways, ranges and aux addresses to their family', () => {
    const s = ok({ subnet: ['10.0.0.0/24', 'fd00::/64'], gateway: ['fd00::fe', '10.0.0.254'], ipRange: ['10.0.0.128/25'], auxAddress: ['a=10.0.0.5', 'b=fd00::5'] });
    expect(s.ipv4?.gateway?.value).toBe(0x0a0000fen);
    expect(s.ipv6?.gateway).not.toBeNull();
    expect(Object.keys(s.ipv4?.aux ?? {})).toEqual(['a']);
    expect(Object.keys(s.ipv6?.aux ?? {})).toEqual(['b']);
  });

  it.each([
    [{ subnet: ['10.0.0.1/24'] }, /it should be 10\.0\.0\.0\/24/],
    [{ subnet: ['banana'] }, /not a CIDR/],
    [{ subnet: ['10.0.0.0/24', '10.1.0.0/24'] }, /at most one IPv4/],
    [{ subnet: ['fd00::/64', 'fd01::/64'] }, /at most one/],
    [{ subnet: ['ff00::/64'] }, /multicast/],
    [{ subnet: ['fe80::/80'] }, /link-local/],
    [{ gateway: ['10.0.0.1'] }, /needs an IPv4 --subnet/],
    [{ subnet: ['10.0.0.0/24'], gateway: ['10.0.1.1'] }, /not a usable address/],
    [{ subnet: ['10.0.0.0/24'], gateway: ['10.0.0.255'] }, /not a usable address/],
    [{ subnet: ['10.0.0.0/24'], gateway: ['zzz'] }, /not an IP address/],
    [{ subnet: ['10.0.0.0/24'], ipRange: ['10.0.1.0/25'] }, /not inside subnet/],
    [{ subnet: ['10.0.0.0/24'], auxAddress: ['x'] }, /expected KEY=VALUE/],
    [{ subnet: ['10.0.0.0/24'], auxAddress: ['x=10.9.9.9'] }, /not inside subnet/],
    [{ subnet: ['10.0.0.0/24'], ipv4: false, ipv6: true }, /cannot be combined with --no-ipv4/],
    [{ ipv4: false }, /requires --ipv6/],
    [{ ipv6: false, subnet: ['fd00::/64'] }, /needs --ipv6/],
    [{ gateway: ['fd00::1'] }, /has no IPv6/],
    [{ mtu: '67' }, /invalid MTU/],
    [{ mtu: '65536' }, /invalid MTU/],
    [{ mtu: '15OO' }, /invalid MTU/],
    [{ mtu: '1279', ipv6: true }, /at least 1280/],
    [{ bridgeName: 'abcdefghijklmnop' }, /invalid bridge name/],
    [{ bridgeName: 'a/b' }, /invalid bridge name/],
    [{ bridgeName: 'a b' }, /invalid bridge name/],
    [{ bridgeName: 'a:b' }, /invalid bridge name/],
    [{ gatewayModeIpv4: 'bridge' }, /invalid gateway mode/],
    [{ gatewayModeIpv6: 'isolated' }, /only be used with --internal/],
    [{ hostBindingIp: '1.2.3' }, /not an IP address/],
    [{ snatIpv4: 'fd00::1' }, /not an IPv4 address/],
    [{ snatIpv6: '1.2.3.4' }, /not an IPv6 address/],
    [{ ifacePrefix: 'averyveryverylong' }, /invalid interface prefix/],
    [{ trustedInterface: ['bad/if'] }, /invalid trusted interface/],
    [{ opt: ['com.docker.network.unknown=1'] }, /unknown option/],
    [{ opt: ['novalue'] }, /expected KEY=VALUE/],
    [{ opt: ['.bridge.enable_icc=yes'] }, /expected true or false/],
    [{ opt: ['.driver.mtu=-1'] }, /invalid MTU/],
    [{ label: ['=x'] }, /expected KEY=VALUE/],
  ] as [CreateFlags, RegExp][])('rejects %j', (flags, re) => fails(flags, re));

  it.each(['', '-x', '.x', 'a b', 'a/b', 'é', 'x'.repeat(65)])('rejects network name %j', (name) => fails({}, /invalid network name/, name));
  it.each(['a', 'A-1', 'web_2.prod', '9', 'x'.repeat(64)])('accepts network name %j', (name) => expect(() => checkObjectName('network', name)).not.toThrow());
});

describe('names', () => {
  it('normalises Docker option keys', () => {
    expect(normalizeOptionKey('.bridge.name')).toBe('com.docker.network.bridge.name');
    expect(normalizeOptionKey('com.docker.network.driver.mtu')).toBe('com.docker.network.driver.mtu');
    expect(() => normalizeOptionKey('bridge.nope')).toThrow(/unknown option/);
  });
  it('parses booleans the way Go does', () => {
    for (const t of ['1', 't', 'T', 'true', 'TRUE', 'True']) expect(parseBool('x', t)).toBe(true);
    for (const f of ['0', 'f', 'F', 'false', 'FALSE', 'False']) expect(parseBool('x', f)).toBe(false);
    expect(() => parseBool('x', 'yes')).toThrow();
  });
  it('stable MACs are locally administered unicast and deterministic', () => {
    const m = stableMac('seed');
    expect(m).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(Number.parseInt(m.slice(0, 2), 16) & 3).toBe(2);
    expect(stableMac('seed')).toBe(m);
    expect(stableMac('other')).not.toBe(m);
  });
  it('validates MACs and interface names', () => {
    expect(parseMac('02-AA-bb-CC-dd-EE')).toBe('02:aa:bb:cc:dd:ee');
    expect(() => parseMac('01:00:5e:00:00:01')).toThrow(/multicast/);
    expect(() => parseMac('02:00:00:00:00')).toThrow();
    expect(() => checkIfname('x', 'eth0')).not.toThrow();
    expect(() => checkIfname('x', '1234567890123456')).toThrow();
  });
});

describe('config settings', () => {
  const c = emptyState().config;
  it('parses pools and booleans', () => {
    expect(parsePools('10.10.0.0/16/24,192.168.100.0/22/26')).toEqual([
      { base: '10.10.0.0/16', size: 24 },
      { base: '192.168.100.0/22', size: 26 },
    ]);
    expect(parsePools('default')).toBeNull();
    expect(applySetting(c, 'ip-forward', 'false').ipForward).toBe(false);
    expect(() => parsePools('10.10.0.0/16/8')).toThrow(/size/);
    expect(() => parsePools('10.10.0.1/16/24')).toThrow(/should be/);
    expect(applySetting(c, 'userland-proxy', 'true').userlandProxy).toBe(true);
    expect(() => applySetting(c, 'nope', '1')).toThrow(/unknown setting/);
  });
});
