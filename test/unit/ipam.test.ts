import { Address4 } from 'ip-address';
import { describe, it, expect } from 'vitest';
import { thrown } from '../helpers/errors.ts';
import {
  DEFAULT_POOLS,
  allocateAddress,
  allocateSubnet,
  cidrOf,
  cidrWithin,
  contains,
  firstHost,
  formatCidr,
  formatIp,
  isUsableHostAddress,
  lastAddress,
  overlaps,
  parseCidr,
  parseIp,
  reservedAddresses,
  size,
  ulaPool,
  isUnicast,
  validateIpv4Subnet,
  validateIpv6Subnet,
  type Cidr,
  type Ip,
  type Pool,
} from '../../src/net/ipam.ts';

const ip = (s: string): Ip => {
  const r = parseIp(s);
  if (r === null) throw new Error(`test fixture ${s} is not an IP`);
  return r;
};
const cidr = (s: string): Cidr => parseCidr(s);
const v = (s: string): bigint => ip(s).value;


describe('parseIp', () => {
  const good: [string, 4 | 6, bigint][] = [
    ['0.0.0.0', 4, 0n],
    ['10.0.0.1', 4, 0x0a000001n],
    ['255.255.255.255', 4, 0xffffffffn],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['0:0:0:0:0:0:0:1', 6, 1n],
    ['0000:0000:0000:0000:0000:0000:0000:0001', 6, 1n],
    ['FD00::0', 6, 0xfdn << 120n],
    ['fd00:0001::0002', 6, (0xfd00_0001n << 96n) | 2n],
    ['2001:DB8::A', 6, (0x2001_0db8n << 96n) | 0xan],
    ['1:2:3:4:5:6:7::', 6, 0x0001_0002_0003_0004_0005_0006_0007_0000n],
    ['::ffff:1.2.3.4', 6, 0xffff_0102_0304n],
    ['::FFFF:1.2.3.4', 6, 0xffff_0102_0304n],
    ['::ffff:102:304', 6, 0xffff_0102_0304n],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 6, (1n << 128n) - 1n],
  ];
  it.each(good)('parses %j as IPv%i', (s, family, value) => {
    expect(parseIp(s)).toEqual({ family, value });
  });

  it('reads dotted quads itself exactly as ip-address does, and leaves other forms to it', () => {
    const quads = ['0.0.0.0', '1.2.3.4', '9.99.100.199', '200.249.250.255', '255.255.255.255', '172.17.0.1', '10.0.0.0'];
    for (const q of quads) expect(parseIp(q)).toEqual({ family: 4, value: new Address4(q).bigInt() });
    for (const odd of ['01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1.2.3.-4', '1.2.3.4 ']) {
      let viaLibrary: bigint | null = null;
      try {
        viaLibrary = new Address4(odd).bigInt();
      } catch {}
      expect(parseIp(odd)?.value ?? null).toBe(viaLibrary);
    }
  });

  const bad = [
    '',
    ' ',
    'x',
    '10.0.0.0/24',
    'fd00::/64',
    'fe80::1%eth0',
    'fe80::1%',
    '::ffff:1.2.3.4%x',
    '256.0.0.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4', // ambiguous: octal to inet_aton, decimal elsewhere
    '0x0a.0.0.1',
    ' 10.0.0.1',
    '10.0.0.1\n',
    '1::2::3',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '::1:2:3:4:5:6:7:8',
    '1::2:',
    'fd00::00001',
    'g::1',
    '[::1]',
    '::ffff:256.1.1.1',
  ];
  it.each(bad)('rejects %j', (s) => {
    expect(parseIp(s)).toBeNull();
  });
});

describe('formatIp', () => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['FD00:0001:0000:0000:0000:0000:0000:0002', 'fd00:1::2'],
    ['2001:0DB8:0000:0000:0000:0000:0000:000A', '2001:db8::a'],
    // one zero group is not compressed (RFC 5952 §4.2.2)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    // the longest run wins (§4.2.3) ...
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    // ... and the first of equally long runs
    ['1:0:0:1:0:0:1:1', '1::1:0:0:1:1'],
    ['0:0:1:0:0:0:0:1', '0:0:1::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['fe80:0000:0000:0000:00ab:00cd:00ef:0001', 'fe80::ab:cd:ef:1'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // IPv4-mapped in dotted form (§5), as the kernel and iproute2 print it
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::ffff:0102:0304', '::ffff:1.2.3.4'],
  ];
  it.each(cases)('formats %j as %j', (input, want) => {
    expect(formatIp(ip(input))).toBe(want);
  });

  it('round-trips what it formats', () => {
    for (const [, want] of cases) expect(formatIp(ip(want))).toBe(want);
  });
});

describe('parseCidr / formatCidr', () => {
  const good: [string, string, number][] = [
    ['10.0.0.0/24', '10.0.0.0/24', 24],
    ['0.0.0.0/0', '0.0.0.0/0', 0],
    ['10.0.0.1/32', '10.0.0.1/32', 32],
    ['10.0.0.2/31', '10.0.0.2/31', 31],
    ['172.16.0.0/12', '172.16.0.0/12', 12],
    ['fd00::/64', 'fd00::/64', 64],
    ['FD00::0/64', 'fd00::/64', 64],
    ['fd00:0000:0000:0001:0000:0000:0000:0000/64', 'fd00:0:0:1::/64', 64],
    ['::/0', '::/0', 0],
    ['::1/128', '::1/128', 128],
    ['fd00::2/127', 'fd00::2/127', 127],
    ['fe80::/64', 'fe80::/64', 64],
  ];
  it.each(good)('accepts %j as %j', (s, canonical, prefix) => {
    const c = parseCidr(s);
    expect(formatCidr(c)).toBe(canonical);
    expect(c.prefix).toBe(prefix);
  });

  const bad: [string, string][] = [
    ['10.0.0.1/24', 'invalid subnet "10.0.0.1/24": it should be 10.0.0.0/24'],
    ['172.17.5.0/16', 'invalid subnet "172.17.5.0/16": it should be 172.17.0.0/16'],
    ['10.0.0.1/31', 'invalid subnet "10.0.0.1/31": it should be 10.0.0.0/31'],
    ['fd00::1/64', 'invalid subnet "fd00::1/64": it should be fd00::/64'],
    ['FD00::1:0:0:0/64', 'invalid subnet "FD00::1:0:0:0/64": it should be fd00::/64'],
    ['fd00::1/127', 'invalid subnet "fd00::1/127": it should be fd00::/127'],
    ['x', 'invalid subnet "x": not a CIDR'],
    ['', 'invalid subnet "": not a CIDR'],
    ['10.0.0.0', 'invalid subnet "10.0.0.0": not a CIDR'],
    ['fd00::', 'invalid subnet "fd00::": not a CIDR'],
    ['10.0.0.0/', 'invalid subnet "10.0.0.0/": not a CIDR'],
    ['/24', 'invalid subnet "/24": not a CIDR'],
    ['10.0.0.0/24/8', 'invalid subnet "10.0.0.0/24/8": not a CIDR'],
    ['10.0.0.0/024', 'invalid subnet "10.0.0.0/024": not a CIDR'],
    ['10.0.0.0/+8', 'invalid subnet "10.0.0.0/+8": not a CIDR'],
    ['10.0.0.0/ 8', 'invalid subnet "10.0.0.0/ 8": not a CIDR'],
    ['10.0.0.0/0x8', 'invalid subnet "10.0.0.0/0x8": not a CIDR'],
    ['10.0.0.0/-1', 'invalid subnet "10.0.0.0/-1": not a CIDR'],
    ['256.0.0.0/8', 'invalid subnet "256.0.0.0/8": not a CIDR'],
    ['fe80::%eth0/64', 'invalid subnet "fe80::%eth0/64": not a CIDR'],
    ['10.0.0.0/33', 'invalid subnet "10.0.0.0/33": the prefix length must be between 0 and 32'],
    ['fd00::/129', 'invalid subnet "fd00::/129": the prefix length must be between 0 and 128'],
  ];
  it.each(bad)('rejects %j with exit code 2', (s, message) => {
    const e = thrown(() => parseCidr(s));
    expect(e.message).toBe(message);
    expect(e.exitCode).toBe(2);
  });

  it('names what was being parsed', () => {
    expect(thrown(() => parseCidr('10.0.0.1/8', 'ip-range')).message).toBe(
      'invalid ip-range "10.0.0.1/8": it should be 10.0.0.0/8',
    );
  });

  it('hints at a prefix length when an address was given', () => {
    expect(thrown(() => parseCidr('10.0.0.0')).hint).toBe('give a prefix length, e.g. 10.0.0.0/24');
    expect(thrown(() => parseCidr('fd00::')).hint).toBe('give a prefix length, e.g. fd00::/64');
    expect(thrown(() => parseCidr('x')).hint).toBeUndefined();
  });
});

describe('cidrOf', () => {
  const cases: [string, number, string][] = [
    ['10.1.2.3', 24, '10.1.2.0/24'],
    ['10.1.2.3', 0, '0.0.0.0/0'],
    ['10.1.2.3', 32, '10.1.2.3/32'],
    ['10.1.2.3', 31, '10.1.2.2/31'],
    ['fd00:1:2:3:4:5:6:7', 64, 'fd00:1:2:3::/64'],
    ['fd00:1:2:3:4:5:6:7', 128, 'fd00:1:2:3:4:5:6:7/128'],
    ['fd00::3', 127, 'fd00::2/127'],
  ];
  it.each(cases)('%s/%i is in %s', (addr, prefix, want) => {
    expect(formatCidr(cidrOf(ip(addr), prefix))).toBe(want);
  });

  it.each([
    ['10.0.0.1', 33],
    ['10.0.0.1', -1],
    ['::1', 129],
    ['::1', 1.5],
  ] as [string, number][])('rejects %s with prefix %d', (addr, prefix) => {
    expect(thrown(() => cidrOf(ip(addr), prefix)).exitCode).toBe(2);
  });
});

describe('contains', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/24', '10.0.0.0', true],
    ['10.0.0.0/24', '10.0.0.255', true],
    ['10.0.0.0/24', '10.0.1.0', false],
    ['10.0.0.0/24', '9.255.255.255', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['10.0.0.5/32', '10.0.0.5', true],
    ['10.0.0.5/32', '10.0.0.6', false],
    ['fd00::/64', 'fd00::ffff:ffff:ffff:ffff', true],
    ['fd00::/64', 'fd00:0:0:1::', false],
    ['::/0', '::ffff:10.0.0.1', true],
    // family mismatch, even where the numbers would match
    ['0.0.0.0/0', '::1', false],
    ['::/96', '10.0.0.1', false],
    ['::ffff:0:0/96', '10.0.0.1', false],
  ];
  it.each(cases)('%s contains %s: %s', (c, a, want) => {
    expect(contains(cidr(c), ip(a))).toBe(want);
  });
});

describe('overlaps', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.0.0/24', '10.0.0.128/25', true],
    ['10.0.0.0/8', '10.255.255.255/32', true],
    ['10.0.0.0/24', '10.0.1.0/24', false],
    ['10.0.0.0/25', '10.0.0.128/25', false],
    ['0.0.0.0/0', '192.168.1.0/24', true],
    ['172.16.0.0/12', '172.31.0.0/16', true],
    ['172.16.0.0/12', '172.32.0.0/16', false],
    ['10.0.0.0/31', '10.0.0.1/32', true],
    ['10.0.0.0/31', '10.0.0.2/31', false],
    ['fd00::/64', 'fd00::/48', true],
    ['fd00::/64', 'fd00:0:0:1::/64', false],
    ['fd00::/127', 'fd00::1/128', true],
    ['fd00::/127', 'fd00::2/127', false],
    ['::/0', 'fe80::/64', true],
    ['0.0.0.0/0', '::/0', false],
    ['0.0.0.0/0', '::/96', false],
  ];
  it.each(cases)('%s and %s: %s', (a, b, want) => {
    expect(overlaps(cidr(a), cidr(b))).toBe(want);
    expect(overlaps(cidr(b), cidr(a))).toBe(want);
  });
});

describe('cidrWithin', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/24', '10.0.0.0/8', true],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/8', '10.0.0.0/24', false],
    ['11.0.0.0/24', '10.0.0.0/8', false],
    ['10.0.0.7/32', '10.0.0.0/29', true],
    ['10.0.0.8/32', '10.0.0.0/29', false],
    ['fd00:0:0:1::/64', 'fd00::/48', true],
    ['fd00::/48', 'fd00::/64', false],
    ['fd01::/64', 'fd00::/48', false],
    ['::/0', '::/0', true],
    ['10.0.0.0/24', '::/0', false],
  ];
  it.each(cases)('%s within %s: %s', (inner, outer, want) => {
    expect(cidrWithin(cidr(inner), cidr(outer))).toBe(want);
  });
});

describe('size and lastAddress', () => {
  const cases: [string, bigint, string][] = [
    ['10.0.0.0/24', 256n, '10.0.0.255'],
    ['10.0.0.0/31', 2n, '10.0.0.1'],
    ['10.0.0.0/32', 1n, '10.0.0.0'],
    ['0.0.0.0/0', 1n << 32n, '255.255.255.255'],
    ['fd00::/64', 1n << 64n, 'fd00::ffff:ffff:ffff:ffff'],
    ['fd00::/127', 2n, 'fd00::1'],
    ['fd00::/128', 1n, 'fd00::'],
    ['::/0', 1n << 128n, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  it.each(cases)('%s has %i addresses, the last %s', (c, n, last) => {
    expect(size(cidr(c))).toBe(n);
    expect(lastAddress(cidr(c))).toBe(v(last));
  });
});

describe('firstHost / reservedAddresses / isUsableHostAddress', () => {
  const cases: [string, string, string[]][] = [
    ['10.0.0.0/24', '10.0.0.1', ['10.0.0.0', '10.0.0.255']],
    ['10.0.0.0/30', '10.0.0.1', ['10.0.0.0', '10.0.0.3']],
    ['10.0.0.0/31', '10.0.0.0', []],
    ['10.0.0.9/32', '10.0.0.9', []],
    ['fd00::/64', 'fd00::1', ['fd00::']],
    ['fd00::/126', 'fd00::1', ['fd00::']],
    ['fd00::/127', 'fd00::', []],
    ['fd00::1/128', 'fd00::1', []],
  ];
  it.each(cases)('%s: first host %s, reserved %j', (c, first, reserved) => {
    const subnet = cidr(c);
    expect(formatIp(firstHost(subnet))).toBe(first);
    expect(reservedAddresses(subnet)).toEqual(reserved.map(v));
    expect(isUsableHostAddress(subnet, ip(first))).toBe(true);
    for (const r of reserved) expect(isUsableHostAddress(subnet, ip(r))).toBe(false);
  });

  const usable: [string, string, boolean][] = [
    ['10.0.0.0/24', '10.0.0.254', true],
    ['10.0.0.0/24', '10.0.1.1', false],
    ['10.0.0.0/31', '10.0.0.1', true],
    ['fd00::/64', 'fd00::ffff:ffff:ffff:ffff', true],
    ['fd00::/127', 'fd00::1', true],
    ['fd00::/64', '10.0.0.1', false],
  ];
  it.each(usable)('in %s, %s is usable: %s', (c, a, want) => {
    expect(isUsableHostAddress(cidr(c), ip(a))).toBe(want);
  });
});

describe('validateIpv6Subnet', () => {
  const ok = [
    'fd00::/64',
    'fd00:1::/48',
    '2001:db8::/32',
    'fe80::/64',
    'fec0::/64',
    'feff::/16',
    '::fffe:0:0/96',
  ];
  it.each(ok)('accepts %s', (c) => {
    expect(() => validateIpv6Subnet(cidr(c))).not.toThrow();
  });

  it('ignores IPv4 subnets', () => {
    expect(() => validateIpv6Subnet(cidr('224.0.0.0/4'))).not.toThrow();
  });

  const bad: [string, string][] = [
    ['ff00::/8', 'multicast subnet ff00::/8 is not allowed'],
    ['ff02::/64', 'multicast subnet ff02::/64 is not allowed'],
    ['FF05::1:3/128', 'multicast subnet ff05::1:3/128 is not allowed'],
    ['fe80::/10', 'fe80::/10 clashes with the link-local prefix fe80::/64'],
    ['fe80::/48', 'fe80::/48 clashes with the link-local prefix fe80::/64'],
    ['fe80::/63', 'fe80::/63 clashes with the link-local prefix fe80::/64'],
    ['fe80::/65', 'fe80::/65 clashes with the link-local prefix fe80::/64'],
    ['fe80::8000:0:0:0/65', 'fe80::8000:0:0:0/65 clashes with the link-local prefix fe80::/64'],
    ['fe80::1/128', 'fe80::1/128 clashes with the link-local prefix fe80::/64'],
    ['fe00::/7', 'fe00::/7 clashes with the link-local prefix fe80::/64'],
    ['::/0', 'subnet ::/0 covers every IPv6 address: a bridge cannot own it'],
    ['::1/128', 'subnet ::1/128 holds the unspecified address :: or the loopback ::1, which no bridge can serve'],
    ['::ffff:0:0/96', '::ffff:0.0.0.0/96 is not a valid IPv6 subnet'],
    ['::ffff:10.0.0.0/104', '::ffff:10.0.0.0/104 is not a valid IPv6 subnet'],
    ['::ffff:10.0.0.1/128', '::ffff:10.0.0.1/128 is not a valid IPv6 subnet'],
    ['::/64', '::/64 is not a valid IPv6 subnet'],
  ];
  it.each(bad)('rejects %s with exit code 2', (c, message) => {
    const e = thrown(() => validateIpv6Subnet(cidr(c)));
    expect(e.message).toBe(message);
    expect(e.exitCode).toBe(2);
  });
});

describe('validateIpv4Subnet', () => {
  it.each(['10.0.0.0/8', '172.17.0.0/16', '192.168.1.0/24', '100.64.0.0/10', '169.254.10.0/24', '1.0.0.0/8', '223.255.255.0/24'])('accepts %s', (c) => {
    expect(() => validateIpv4Subnet(cidr(c))).not.toThrow();
  });
  const bad: [string, RegExp][] = [
    ['0.0.0.0/0', /covers every IPv4 address/],
    ['0.0.0.0/8', /"this network" range 0\.0\.0\.0\/8/],
    ['0.1.0.0/16', /"this network" range/],
    ['127.0.0.0/8', /loopback range 127\.0\.0\.0\/8/],
    ['127.5.0.0/24', /loopback range/],
    ['64.0.0.0/2', /loopback range/],
    ['224.0.0.0/4', /multicast range 224\.0\.0\.0\/4/],
    ['239.1.0.0/16', /multicast range/],
    ['240.0.0.0/4', /reserved range 240\.0\.0\.0\/4/],
    ['255.255.255.255/32', /reserved range/],
    ['128.0.0.0/1', /multicast range/],
  ];
  it.each(bad)('rejects %s with exit code 2', (c, message) => {
    const e = thrown(() => validateIpv4Subnet(cidr(c)));
    expect(e.message).toMatch(message);
    expect(e.exitCode).toBe(2);
  });
});

describe('isUnicast', () => {
  const table: [string, boolean][] = [
    ['192.0.2.10', true],
    ['10.1.2.3', true],
    ['0.0.0.0', false],
    ['127.0.0.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['2001:db8::1', true],
    ['fe80::1', true],
    ['::', false],
    ['::1', false],
    ['ff02::1', false],
    ['::ffff:10.0.0.1', false],
  ];
  it.each(table)('%s: %s', (a, want) => {
    expect(isUnicast(parseIp(a)!)).toBe(want);
  });
});

describe('DEFAULT_POOLS', () => {
  it("is Docker's local default list", () => {
    expect(DEFAULT_POOLS).toEqual([
      { base: '172.17.0.0/16', size: 16 },
      { base: '172.18.0.0/16', size: 16 },
      { base: '172.19.0.0/16', size: 16 },
      { base: '172.20.0.0/14', size: 16 },
      { base: '172.24.0.0/14', size: 16 },
      { base: '172.28.0.0/14', size: 16 },
      { base: '192.168.0.0/16', size: 20 },
    ]);
  });

  it('hands out 172.17..172.31 /16s then the 16 /20s of 192.168.0.0/16, then null', () => {
    const got: string[] = [];
    const used: Cidr[] = [];
    for (;;) {
      const c = allocateSubnet(DEFAULT_POOLS, 4, used);
      if (c === null) break;
      got.push(formatCidr(c));
      used.push(c);
    }
    const want = [
      ...Array.from({ length: 15 }, (_, k) => `172.${17 + k}.0.0/16`),
      ...Array.from({ length: 16 }, (_, k) => `192.168.${k * 16}.0/20`),
    ];
    expect(got).toEqual(want);
  });

  it('cannot be modified by a caller', () => {
    expect(() => DEFAULT_POOLS.push({ base: '10.0.0.0/8', size: 24 })).toThrow(TypeError);
  });
});

describe('allocateSubnet', () => {
  const cases: [string, Pool[], 4 | 6, string[], string | null][] = [
    ['first candidate when nothing is used', DEFAULT_POOLS, 4, [], '172.17.0.0/16'],
    ['skips used subnets', DEFAULT_POOLS, 4, ['172.17.0.0/16', '172.18.0.0/16'], '172.19.0.0/16'],
    ['fills a gap first', DEFAULT_POOLS, 4, ['172.17.0.0/16', '172.19.0.0/16'], '172.18.0.0/16'],
    ['skips a candidate holding a host /32', DEFAULT_POOLS, 4, ['172.17.200.1/32'], '172.18.0.0/16'],
    [
      'skips a candidate overlapping a small on-link route',
      DEFAULT_POOLS,
      4,
      ['172.17.3.0/24', '172.18.0.0/30'],
      '172.19.0.0/16',
    ],
    ['a used /12 forces 192.168.0.0/20', DEFAULT_POOLS, 4, ['172.16.0.0/12'], '192.168.0.0/20'],
    [
      'a used /12 and a host in 192.168.0.0/20',
      DEFAULT_POOLS,
      4,
      ['172.16.0.0/12', '192.168.1.10/32'],
      '192.168.16.0/20',
    ],
    ['a default route exhausts everything', DEFAULT_POOLS, 4, ['0.0.0.0/0'], null],
    ['exhausted pools return null', DEFAULT_POOLS, 4, ['172.16.0.0/12', '192.168.0.0/16'], null],
    ['ignores used entries of the other family', DEFAULT_POOLS, 4, ['::/0', 'fd00::/8'], '172.17.0.0/16'],
    ['no pool of the family returns null', DEFAULT_POOLS, 6, [], null],
    [
      'skips pools of the other family',
      [{ base: 'fd00::/48', size: 64 }, { base: '10.0.0.0/8', size: 24 }],
      4,
      [],
      '10.0.0.0/24',
    ],
    ['skips past a used /16 in one step', [{ base: '10.0.0.0/8', size: 24 }], 4, ['10.0.0.0/16'], '10.1.0.0/24'],
    [
      'skips past overlapping used blocks',
      [{ base: '10.0.0.0/8', size: 24 }],
      4,
      ['10.0.0.0/16', '10.0.128.0/17', '10.1.0.0/24', '10.1.1.7/32'],
      '10.1.2.0/24',
    ],
    ['pool of exactly one candidate', [{ base: '10.9.0.0/24', size: 24 }], 4, [], '10.9.0.0/24'],
    ['pool of exactly one used candidate', [{ base: '10.9.0.0/24', size: 24 }], 4, ['10.9.0.0/25'], null],
    ['/31 candidates', [{ base: '10.0.0.0/30', size: 31 }], 4, ['10.0.0.1/32'], '10.0.0.2/31'],
    ['/32 candidates', [{ base: '10.0.0.0/30', size: 32 }], 4, ['10.0.0.0/31'], '10.0.0.2/32'],
    ['IPv6 /64s of a /48', [{ base: 'fd00::/48', size: 64 }], 6, ['fd00::/64', 'fd00:0:0:1::5/128'], 'fd00:0:0:2::/64'],
    ['IPv6 /127 candidates', [{ base: 'fd00::/126', size: 127 }], 6, ['fd00::/128'], 'fd00::2/127'],
    [
      'IPv6 pool at the top of the space',
      [{ base: 'ffff:ffff:ffff:ffff::/64', size: 64 }],
      6,
      [],
      'ffff:ffff:ffff:ffff::/64',
    ],
    ['IPv6 pool at the top of the space, used', [{ base: 'ffff:ffff:ffff:ffff::/64', size: 64 }], 6, ['::/0'], null],
  ];
  it.each(cases)('%s', (_, pools, family, used, want) => {
    const got = allocateSubnet(pools, family, used.map(cidr));
    expect(got === null ? null : formatCidr(got)).toBe(want);
  });

  it('rejects a malformed pool', () => {
    const e = thrown(() => allocateSubnet([{ base: '10.0.0.1/8', size: 24 }], 4, []));
    expect(e.message).toBe('invalid address pool "10.0.0.1/8": it should be 10.0.0.0/8');
    expect(e.exitCode).toBe(2);
  });

  it.each([4, 33, 8.5])('rejects a pool size of %d for a /8', (poolSize) => {
    const e = thrown(() => allocateSubnet([{ base: '10.0.0.0/8', size: poolSize }], 4, []));
    expect(e.message).toBe(`invalid address pool 10.0.0.0/8: size ${poolSize} must be between 8 and 32`);
    expect(e.exitCode).toBe(2);
  });

  it('copes with 1000 used entries in a 10.0.0.0/8 pool of /24s', () => {
    // Every other /24 of the first 2000 is used by a host, and a few big blocks are mixed
    // in; used is shuffled so no ordering is assumed.
    const used: Cidr[] = [];
    for (let k = 0; k < 990; k++) used.push(cidrOf({ family: 4, value: 0x0a000000n + BigInt(k) * 256n + 7n }, 32));
    for (let k = 0; k < 10; k++) used.push(cidr(`10.${10 + k}.0.0/16`));
    used.push(cidr('10.0.0.0/16')); // covers the first 256 /24s at once
    for (let k = used.length - 1; k > 0; k--) {
      const j = (k * 7919) % (k + 1);
      [used[k], used[j]] = [used[j]!, used[k]!];
    }
    const got = allocateSubnet([{ base: '10.0.0.0/8', size: 24 }], 4, used);
    expect(got && formatCidr(got)).toBe('10.3.222.0/24');

    // The whole /8 used except its very last /24.
    const dense: Cidr[] = [cidr('10.0.0.0/9'), cidr('10.128.0.0/10'), cidr('10.192.0.0/11'), cidr('10.224.0.0/12')];
    for (let k = 0; k < 4095; k++) dense.push(cidrOf({ family: 4, value: 0x0af00000n + BigInt(k) * 256n }, 24));
    const last = allocateSubnet([{ base: '10.0.0.0/8', size: 24 }], 4, dense);
    expect(last && formatCidr(last)).toBe('10.255.255.0/24');
  });

  it('copes with 1000 used /64s and hosts in an IPv6 /48 of /64s', () => {
    const used: Cidr[] = [];
    for (let k = 0; k < 1000; k++) {
      const base = (0xfdn << 120n) | (BigInt(k) << 64n);
      used.push(k % 2 === 0 ? { family: 6, base, prefix: 64 } : { family: 6, base: base + 1n, prefix: 128 });
    }
    const got = allocateSubnet([{ base: 'fd00::/48', size: 64 }], 6, used);
    expect(got && formatCidr(got)).toBe('fd00:0:0:3e8::/64');
  });
});

describe('ulaPool', () => {
  const id = 'b08dfa6083e7567a1921a715000001fb';

  it('derives the /48 from the first 40 bits of SHA-256(machine id)', () => {
    // printf %s b08dfa6083e7567a1921a715000001fb | sha256sum  ->  fa0a9324f2...
    expect(ulaPool(id)).toEqual({ base: 'fdfa:a93:24f2::/48', size: 64 });
    // printf %s other-machine | sha256sum  ->  65671af749...
    expect(ulaPool('other-machine')).toEqual({ base: 'fd65:671a:f749::/48', size: 64 });
  });

  it('is stable and a valid ULA /48', () => {
    const a = ulaPool(id);
    expect(ulaPool(id)).toEqual(a);
    expect(a.base.startsWith('fd')).toBe(true);
    const c = parseCidr(a.base);
    expect(c.family).toBe(6);
    expect(c.prefix).toBe(48);
    expect(cidrWithin(c, cidr('fd00::/8'))).toBe(true);
    expect(() => validateIpv6Subnet(c)).not.toThrow();
    expect(ulaPool('another-machine').base).not.toBe(a.base);
  });

  it('feeds allocateSubnet', () => {
    const pool = ulaPool(id);
    const first = allocateSubnet([pool], 6, []);
    expect(first && formatCidr(first)).toBe('fdfa:a93:24f2::/64');
    const second = allocateSubnet([pool], 6, first ? [first] : []);
    expect(second && formatCidr(second)).toBe('fdfa:a93:24f2:1::/64');
  });
});

describe('allocateAddress', () => {
  const cases: [string, string, string | null, string[], string | null][] = [
    ['lowest host of an empty /24', '10.0.0.0/24', null, [], '10.0.0.1'],
    ['skips taken addresses', '10.0.0.0/24', null, ['10.0.0.1', '10.0.0.2', '10.0.0.4'], '10.0.0.3'],
    ['honours a range', '10.0.0.0/24', '10.0.0.128/25', [], '10.0.0.128'],
    ['range and taken together', '10.0.0.0/24', '10.0.0.128/25', ['10.0.0.128', '10.0.0.129'], '10.0.0.130'],
    ['skips the network address at the start of a range', '10.0.0.0/24', '10.0.0.0/25', [], '10.0.0.1'],
    ['never the broadcast address', '10.0.0.0/24', '10.0.0.254/31', ['10.0.0.254'], null],
    ['a /30 has two hosts', '10.0.0.0/30', null, ['10.0.0.1'], '10.0.0.2'],
    ['a full /30', '10.0.0.0/30', null, ['10.0.0.1', '10.0.0.2'], null],
    ['a /31 uses both addresses', '10.0.0.0/31', null, [], '10.0.0.0'],
    ['a /31 second address', '10.0.0.0/31', null, ['10.0.0.0'], '10.0.0.1'],
    ['a full /31', '10.0.0.0/31', null, ['10.0.0.0', '10.0.0.1'], null],
    ['a /32', '10.0.0.5/32', null, [], '10.0.0.5'],
    ['a taken /32', '10.0.0.5/32', null, ['10.0.0.5'], null],
    ['range clamped to the subnet', '10.0.0.0/25', '10.0.0.0/24', ['10.0.0.1'], '10.0.0.2'],
    ['range outside the subnet', '10.0.0.0/25', '10.0.1.0/24', [], null],
    ['range of the other family', '10.0.0.0/24', 'fd00::/64', [], null],
    ['IPv6 skips the anycast address', 'fd00::/64', null, [], 'fd00::1'],
    ['IPv6 skips taken', 'fd00::/64', null, ['fd00::1', 'fd00::2'], 'fd00::3'],
    ['IPv6 range', 'fd00::/64', 'fd00::ff00/120', [], 'fd00::ff00'],
    ['IPv6 /127 uses both addresses', 'fd00::/127', null, [], 'fd00::'],
    ['IPv6 full /127', 'fd00::/127', null, ['fd00::', 'fd00::1'], null],
    ['IPv6 /128', 'fd00::9/128', null, [], 'fd00::9'],
    [
      'IPv6 last address of a /64 is usable',
      'fd00::/64',
      'fd00::ffff:ffff:ffff:fffe/127',
      ['fd00::ffff:ffff:ffff:fffe'],
      'fd00::ffff:ffff:ffff:ffff',
    ],
  ];
  it.each(cases)('%s', (_, subnet, range, taken, want) => {
    const got = allocateAddress(cidr(subnet), range === null ? null : cidr(range), new Set(taken.map(v)));
    expect(got === null ? null : formatIp(got)).toBe(want);
    if (got !== null) expect(isUsableHostAddress(cidr(subnet), got)).toBe(true);
  });

  it('exhausts a /24 after 254 allocations', () => {
    const subnet = cidr('10.0.0.0/24');
    const taken = new Set<bigint>();
    for (let k = 0; k < 254; k++) {
      const got = allocateAddress(subnet, null, taken);
      expect(got).not.toBeNull();
      taken.add(got!.value);
    }
    expect(Math.min(...[...taken].map(Number))).toBe(Number(v('10.0.0.1')));
    expect(Math.max(...[...taken].map(Number))).toBe(Number(v('10.0.0.254')));
    expect(allocateAddress(subnet, null, taken)).toBeNull();
  });

  it('copes with a /64 holding 1000 taken addresses', () => {
    const subnet = cidr('fd00::/64');
    const taken = new Set<bigint>();
    for (let k = 1n; k <= 1000n; k++) taken.add(subnet.base + k);
    expect(formatIp(allocateAddress(subnet, null, taken)!)).toBe('fd00::3e9');
    // and a range that is entirely taken ends without walking the rest of the /64
    expect(allocateAddress(subnet, cidr('fd00::/119'), taken)).toBeNull();
  });
});
