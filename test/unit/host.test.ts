// The /proc parsers behind readHostPrefixes, as data.
import { describe, expect, it } from 'vitest';
import { parseAddrs, parseFibTrieLocal, parseIfInet6, parseProcRoute } from '../../src/net/host.ts';
import { thrown } from '../helpers/errors.ts';

describe('host prefixes from /proc', () => {
  it('/proc/net/route: main-table routes with their device, without the default route', () => {
    const text = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'br-1\t0000110A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
      'tun0\t0100A8C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0',
      '',
    ].join('\n');
    expect(parseProcRoute(text, true)).toEqual([
      { dst: '192.0.2.0/24', dev: 'eth0' },
      { dst: '10.17.0.0/16', dev: 'br-1' },
      { dst: '192.168.0.1/32', dev: 'tun0' },
    ]);
    // a big-endian kernel prints the words the other way round
    expect(parseProcRoute('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\tC0000200\t0\t1\t0\t0\t0\tFFFFFF00\n', false)).toEqual([
      { dst: '192.0.2.0/24', dev: 'eth0' },
    ]);
  });

  it('/proc/net/fib_trie: the host\'s own IPv4 addresses, once each, without loopback', () => {
    const text = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 198.51.100.7
        /32 host LOCAL
     +-- 203.0.113.0/24 2 0 2
        |-- 203.0.113.0
           /24 host LOCAL
        |-- 203.0.113.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.0.2.2
        /32 host LOCAL
`;
    // 203.0.113.1/24 on lo: its whole subnet is local
    expect(parseFibTrieLocal(text)).toEqual([
      { local: '192.0.2.2', prefixlen: 32 },
      { local: '198.51.100.7', prefixlen: 32 },
      { local: '203.0.113.0', prefixlen: 24 },
      { local: '203.0.113.1', prefixlen: 32 },
    ]);
  });

  it('/proc/net/if_inet6: global addresses with their prefix length and device', () => {
    const text = [
      'fe8000000000000000fc00fffe000001 04 40 20 80     eth0',
      '00000000000000000000000000000001 01 80 10 80       lo',
      'fd000000000000000000000000000002 04 40 00 82     eth0',
      '20010db8000000000000000000000001 07 30 00 80   br-abc',
      '',
    ].join('\n');
    expect(parseIfInet6(text)).toEqual([
      { family: 6, local: 'fd00:0000:0000:0000:0000:0000:0000:0002', prefixlen: 64, dev: 'eth0' },
      { family: 6, local: '2001:0db8:0000:0000:0000:0000:0000:0001', prefixlen: 48, dev: 'br-abc' },
    ]);
  });
});

describe('ip -j output read as input', () => {
  it('leaves out entries whose device name, address or prefix brnet would not accept', () => {
    const text = JSON.stringify([
      { ifname: 'br0', addr_info: [{ family: 'inet', local: '10.1.0.1', prefixlen: 24 }, { family: 'inet6', local: 'fd00::1', prefixlen: 64 }] },
      { ifname: 'x#y', addr_info: [{ family: 'inet', local: '10.2.0.1', prefixlen: 24 }] },
      { ifname: 'br1', addr_info: [{ family: 'inet', local: '10.3.0.1\nnetns add q', prefixlen: 24 }, { family: 'inet', local: '10.3.0.2', prefixlen: 33 }] },
      { ifname: 'br2', addr_info: [{ family: 'inet', local: '10.4.0.1', prefixlen: '24' }] },
      { ifname: 7, addr_info: [] },
      null,
    ]);
    expect(parseAddrs(text)).toEqual([
      { family: 4, local: '10.1.0.1', prefixlen: 24, dev: 'br0' },
      { family: 6, local: 'fd00::1', prefixlen: 64, dev: 'br0' },
    ]);
  });
  it('fails with exit 5 on output that is not a JSON array', () => {
    for (const text of ['{"a":1}', 'not json', '']) expect(thrown(() => parseAddrs(text)).exitCode).toBe(5);
  });
});
