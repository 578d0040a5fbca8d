import { describe, expect, it } from 'vitest';
import { thrown } from '../helpers/errors.ts';
import { type HostPorts, matchBindings, planBindings } from '../../src/core/port-bindings.ts';
import { filterMatches, flowFilters, parseConntrackList } from '../../src/net/conntrack.ts';
import {
  type EphemeralRange,
  type Listener,
  type PortRequest,
  ephemeralPorts,
  hostIpsOverlap,
  listenerBlocks,
  parseLocalPortRange,
  parsePortSpec,
  parseProcNet,
  parseReservedPorts,
} from '../../src/net/ports.ts';
import type { Network, Port, State } from '../../src/state/schema.ts';
import { emptyState } from '../../src/state/schema.ts';
import { ep, net } from '../fixtures/state.ts';


/** A request as "proto hostIp hostPort-hostPortEnd->containerPort", for compact tables. */
const show = (r: PortRequest) =>
  `${r.proto} ${r.hostIp ?? '*'} ${r.hostPort === null ? '*' : `${r.hostPort}-${r.hostPortEnd}`}->${r.containerPort}`;

describe('parsePortSpec', () => {
  const good: [string, string[]][] = [
    ['80', ['tcp * *->80']],
    ['80/udp', ['udp * *->80']],
    ['80/UDP', ['udp * *->80']],
    ['80/Sctp', ['sctp * *->80']],
    ['8080:80', ['tcp * 8080-8080->80']],
    [':80', ['tcp * *->80']],
    ['127.0.0.1:8080:80', ['tcp 127.0.0.1 8080-8080->80']],
    ['127.0.0.1::80', ['tcp 127.0.0.1 *->80']],
    ['0.0.0.0:443:443/tcp', ['tcp 0.0.0.0 443-443->443']],
    ['[::1]:8080:80', ['tcp ::1 8080-8080->80']],
    ['[::]::53/udp', ['udp :: *->53']],
    ['[FD98:0::1]:1:65535', ['tcp fd98::1 1-1->65535']],
    ['::1:8080:80', ['tcp ::1 8080-8080->80']], // bare IPv6, split from the right
    ['[::ffff:10.0.0.1]:80:80', ['tcp 10.0.0.1 80-80->80']], // v4-mapped means IPv4
    ['8000-8002:80-82', ['tcp * 8000-8000->80', 'tcp * 8001-8001->81', 'tcp * 8002-8002->82']],
    ['8000-8010:80', ['tcp * 8000-8010->80']],
    ['80-81', ['tcp * *->80', 'tcp * *->81']],
    ['10.0.0.1::80-81/udp', ['udp 10.0.0.1 *->80', 'udp 10.0.0.1 *->81']],
    ['7:7-7', ['tcp * 7-7->7']],
  ];
  it.each(good)('%s', (spec, want) => {
    const reqs = parsePortSpec(spec);
    expect(reqs.map(show)).toEqual(want);
    for (const r of reqs) expect(r.spec).toBe(spec);
  });

  const bad: [string, RegExp][] = [
    ['', /container port is missing/],
    ['8080:', /container port is missing/],
    ['0', /not between 1 and 65535/],
    ['65536', /not between 1 and 65535/],
    ['0:80', /host port 0 is not between/],
    ['123456', /not a port/],
    ['80-79', /ends before it starts/],
    ['http', /not a port/],
    ['-80', /not a port/],
    ['80-', /not a port/],
    ['80/icmp', /unknown protocol "icmp"/],
    ['80/', /unknown protocol ""/],
    ['80/tcp/udp', /not a port/],
    ['8000-8001:80-82', /host range has 2 ports and the container range 3/],
    ['8000:80-81', /host range has 1 port and the container range 2/],
    ['127.0.0.1:80', /is an IP address, not a host port/],
    ['300.1.1.1:80:80', /not an IP address/],
    ['foo:80:80', /not an IP address/],
    ['fe80::1%eth0:80:80', /not an IP address/],
    ['[::1:80:80', /bracketed host IP/],
    ['[::1]:80', /bracketed host IP/],
    ['[::1]80:80', /bracketed host IP/],
    ['[]:80:80', /empty host IP/],
    [' 80', /not a port/],
  ];
  it.each(bad)('rejects %j', (spec, why) => {
    const e = thrown(() => parsePortSpec(spec));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(why);
  });
});

describe('overlap', () => {
  const cases: [string, string, boolean][] = [
    ['0.0.0.0', '0.0.0.0', true],
    ['0.0.0.0', '10.0.0.1', true],
    ['127.0.0.1', '0.0.0.0', true],
    ['10.0.0.1', '10.0.0.1', true],
    ['10.0.0.1', '10.0.0.2', false],
    ['::', '::', true],
    ['::', 'fd00::1', true],
    ['fd00::1', 'fd00::2', false],
    ['0.0.0.0', '::', false], // separate families, separate rules
    ['::', '10.0.0.1', false],
  ];
  it.each(cases)('%s vs %s: %s', (a, b, want) => {
    expect(hostIpsOverlap(a, b)).toBe(want);
    expect(hostIpsOverlap(b, a)).toBe(want);
  });

  it('takes a socket on [::] to hold the port on IPv4 too (it may be dual-stack)', () => {
    const l = (ip: string): Listener => ({ proto: 'tcp', ip, port: 80 });
    expect(listenerBlocks(l('::'), '10.0.0.1')).toBe(true);
    expect(listenerBlocks(l('0.0.0.0'), '127.0.0.1')).toBe(true);
    expect(listenerBlocks(l('127.0.0.1'), '0.0.0.0')).toBe(true);
    expect(listenerBlocks(l('127.0.0.1'), '10.0.0.1')).toBe(false);
    expect(listenerBlocks(l('0.0.0.0'), '::')).toBe(false);
    expect(listenerBlocks(l('fd00::1'), '::')).toBe(true);
  });
});

describe('/proc/net parsing', () => {
  const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1681 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 1682 1 0000000000000000 100 0 0 10 0
   2: 0100A8C0:0016 0200A8C0:D431 01 00000000:00000000 02:000A7B4F 00000000     0        0 1700 4 0000000000000000 20 4 29 10 -1
`;
  const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 000098FD000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 0000000000000000FFFF00000100007F:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
`;
  const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1712 2 0000000000000000 0
  101: 0100A8C0:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 1713 2 0000000000000000 0
`;

  it('reads listening TCP sockets (little-endian words), skipping connections', () => {
    expect(parseProcNet(tcp, 'tcp', true)).toEqual([
      { proto: 'tcp', ip: '0.0.0.0', port: 8080 },
      { proto: 'tcp', ip: '127.0.0.1', port: 3306 },
    ]);
  });

  it('reads IPv6 sockets, mapping v4-mapped addresses to IPv4', () => {
    expect(parseProcNet(tcp6, 'tcp', true)).toEqual([
      { proto: 'tcp', ip: '::', port: 80 },
      { proto: 'tcp', ip: '::1', port: 8081 },
      { proto: 'tcp', ip: 'fd98::1', port: 443 },
      { proto: 'tcp', ip: '127.0.0.1', port: 53 },
    ]);
  });

  it('reads bound, unconnected UDP sockets only', () => {
    expect(parseProcNet(udp, 'udp', true)).toEqual([{ proto: 'udp', ip: '127.0.0.53', port: 53 }]);
  });

  it('reads big-endian hosts too', () => {
    expect(parseProcNet('   0: 7F000001:0CEA 00000000:0000 0A x', 'tcp', false)).toEqual([{ proto: 'tcp', ip: '127.0.0.1', port: 3306 }]);
  });

  it('ignores garbage', () => {
    expect(parseProcNet('', 'tcp')).toEqual([]);
    expect(parseProcNet('nonsense\n  0: zz:zz 0 0A', 'tcp')).toEqual([]);
  });
});

describe('ephemeral range', () => {
  it('parses ip_local_port_range', () => {
    expect(parseLocalPortRange('32768\t60999\n')).toEqual({ start: 32768, end: 60999 });
    expect(parseLocalPortRange('1024 1024')).toEqual({ start: 1024, end: 1024 });
    expect(parseLocalPortRange('')).toBeNull();
    expect(parseLocalPortRange('60999 32768')).toBeNull();
    expect(parseLocalPortRange('0 70000')).toBeNull();
  });

  it('parses ip_local_reserved_ports', () => {
    expect([...parseReservedPorts('\n')]).toEqual([]);
    expect([...parseReservedPorts('8080,9000-9002\n')]).toEqual([8080, 9000, 9001, 9002]);
  });

  it('hands out ports lowest first, skipping reserved ones', () => {
    const r: EphemeralRange = { start: 100, end: 106, reserved: parseReservedPorts('100-101,104') };
    expect([...ephemeralPorts(r)]).toEqual([102, 103, 105, 106]);
  });
});

// --- allocation --------------------------------------------------------------------------------

function hostOf(listeners: Listener[] = [], range: EphemeralRange = { start: 40000, end: 40005, reserved: new Set([40000]) }): HostPorts & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    listeners: () => (reads.push('listeners'), listeners),
    ephemeral: () => (reads.push('ephemeral'), range),
  };
}

const v6 = { subnet: 'fd00:1::/64', gateway: 'fd00:1::1', ipRange: null, auxAddresses: {}, allocated: false };

function world(): { state: State; web: Network; dual: Network } {
  const s = emptyState();
  const web = net('web', 'a', {
    endpoints: [
      ep('app', '10.1.0.2/24', { ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }] }),
      ep('db', '10.1.0.3/24', { ports: [{ proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 }] }),
      ep('new', '10.1.0.4/24'),
    ],
  });
  const dual = net('dual', 'b', {
    ipv4: { subnet: '10.2.0.0/24', gateway: '10.2.0.1', ipRange: null, auxAddresses: {}, allocated: false },
    ipv6: v6,
    endpoints: [ep('d1', '10.2.0.2/24', { ipv6: 'fd00:1::2/64' }), ep('d6', null, { ipv6: 'fd00:1::3/64' })],
  });
  s.networks = [web, dual];
  return { state: s, web, dual };
}

const find = (n: Network, name: string) => n.endpoints.find((e) => e.name === name)!;
const text = (ps: Port[]) => ps.map((p) => `${p.proto} ${p.hostIp}:${p.hostPort}->${p.containerPort}`);
const plan = (state: State, n: Network, e: string, specs: string[], host = hostOf()) =>
  planBindings(state, n, find(n, e), specs.flatMap(parsePortSpec), host);

describe('planBindings', () => {
  it('binds every address of each family the endpoint has, with one host port', () => {
    const { state, web, dual } = world();
    expect(text(plan(state, web, 'new', ['9000:90']))).toEqual(['tcp 0.0.0.0:9000->90']);
    expect(text(plan(state, dual, 'd1', ['9000:90']))).toEqual(['tcp 0.0.0.0:9000->90', 'tcp :::9000->90']);
    expect(text(plan(state, dual, 'd6', ['9000:90']))).toEqual(['tcp :::9000->90']);
    expect(text(plan(state, dual, 'd1', ['[fd00::9]:9000:90']))).toEqual(['tcp fd00::9:9000->90']);
  });

  it("uses the network's host binding IP when the SPEC has none", () => {
    const { state, web } = world();
    web.hostBindingIp = '192.0.2.1';
    expect(text(plan(state, web, 'new', ['9000:90', '10.9.9.9:9001:91']))).toEqual(['tcp 192.0.2.1:9000->90', 'tcp 10.9.9.9:9001->91']);
    web.hostBindingIp = '0.0.0.0'; // the reference driver's default: all addresses
    expect(text(plan(state, web, 'new', ['9000:90']))).toEqual(['tcp 0.0.0.0:9000->90']);
    web.hostBindingIp = 'fd00::1';
    expect(thrown(() => plan(state, web, 'new', ['9000:90'])).exitCode).toBe(2);
  });

  it('refuses a host IP of a family the endpoint has no address in, and ::1', () => {
    const { state, web, dual } = world();
    expect(thrown(() => plan(state, web, 'new', ['[fd00::9]:9000:90'])).message).toMatch(/endpoint new has no IPv6 address/);
    expect(thrown(() => plan(state, dual, 'd6', ['127.0.0.1:9000:90'])).message).toMatch(/has no IPv4 address/);
    expect(thrown(() => plan(state, dual, 'd1', ['[::1]:9000:90'])).exitCode).toBe(2);
  });

  it('refuses ports published anywhere on an overlapping host IP (4)', () => {
    const { state, web, dual } = world();
    for (const [n, e, ...specs] of [
      [web, 'new', '8080:81'],
      [web, 'new', '10.0.0.1:8080:81'],
      [dual, 'd1', '8080:81'], // other network, same port, IPv4 twin overlaps
      [web, 'new', '5353:53/udp'], // 0.0.0.0 overlaps 127.0.0.1
      [web, 'app', '8080:80'], // the very same binding again
      [web, 'new', '9000:90', '9000:91'], // two in one call
    ] as [Network, string, ...string[]][]) {
      const e2 = thrown(() => plan(state, n, e, specs));
      expect(e2.exitCode, `${e} ${specs}`).toBe(4);
      expect(e2.message).toMatch(/already published by/);
    }
    expect(thrown(() => plan(state, web, 'new', ['9000:90', '9000:91'])).message).toMatch(/"9000:90" in this call/);
    // not overlapping: another IP, another protocol, the other family
    expect(text(plan(state, web, 'new', ['127.0.0.2:5353:53/udp', '8080:80/udp']))).toEqual(['udp 127.0.0.2:5353->53', 'udp 0.0.0.0:8080->80']);
    expect(text(plan(state, dual, 'd6', ['8080:80']))).toEqual(['tcp :::8080->80']);
  });

  it('refuses ports held by listening sockets, and checks them only when needed', () => {
    const { state, web } = world();
    const host = hostOf([{ proto: 'tcp', ip: '127.0.0.1', port: 9000 }, { proto: 'udp', ip: '0.0.0.0', port: 9001 }]);
    expect(thrown(() => plan(state, web, 'new', ['9000:90'], host)).message).toMatch(/a socket on the host listens on 127\.0\.0\.1:9000\/tcp/);
    expect(thrown(() => plan(state, web, 'new', ['10.0.0.1:9001:90/udp'], host)).exitCode).toBe(4);
    expect(text(plan(state, web, 'new', ['10.0.0.1:9000:90', '9000:90/udp', '9001:90/sctp'], host))).toHaveLength(3);
    const none = hostOf();
    plan(state, web, 'new', ['9000:90/sctp'], none);
    expect(none.reads).toEqual([]); // SCTP: no socket check, no ephemeral range
  });

  it('takes the first free port of a host range, and ephemeral ports skipping reserved ones', () => {
    const { state, web, dual } = world();
    const host = hostOf([{ proto: 'tcp', ip: '0.0.0.0', port: 40001 }]);
    expect(text(plan(state, web, 'new', ['8079-8085:80', '80', '81'], host))).toEqual([
      'tcp 0.0.0.0:8079->80',
      'tcp 0.0.0.0:40002->80', // 40000 reserved, 40001 listened on
      'tcp 0.0.0.0:40003->81',
    ]);
    expect(text(plan(state, web, 'new', ['8080-8085:80'], host))).toEqual(['tcp 0.0.0.0:8081->80']);
    // twins get one port free in both families
    const taken = world();
    taken.dual.endpoints[1]!.ports.push({ proto: 'tcp', hostIp: '::', hostPort: 40002, containerPort: 1 });
    expect(text(plan(taken.state, taken.dual, 'd1', ['80'], host))).toEqual(['tcp 0.0.0.0:40003->80', 'tcp :::40003->80']);
    // explicit ranges may use reserved ports
    expect(text(plan(state, dual, 'd1', ['40000-40001:80'], host))).toEqual(['tcp 0.0.0.0:40000->80', 'tcp :::40000->80']);
    expect(thrown(() => plan(state, web, 'new', ['8080-8080:80'], host)).exitCode).toBe(4);
    expect(thrown(() => plan(state, web, 'new', ['1-5'], host)).message).toMatch(/no free tcp port left in the ephemeral range 40000-40005/);
  });

  it('refuses internal networks (4) and changes nothing given nothing', () => {
    const { state, web } = world();
    web.internal = true;
    const e = thrown(() => plan(state, web, 'new', ['80']));
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/network web is internal/);
    const host = hostOf();
    expect(plan(state, web, 'new', [], host)).toEqual([]);
    expect(host.reads).toEqual([]);
  });

  it('does not modify the state it is given', () => {
    const { state, dual } = world();
    const before = JSON.stringify(state);
    plan(state, dual, 'd1', ['9000:90', '91']);
    expect(JSON.stringify(state)).toBe(before);
  });

  it('opens the container port on routed families, without host port or NAT conflicts', () => {
    const { state, dual } = world();
    dual.gatewayModeIpv6 = 'routed';
    expect(text(plan(state, dual, 'd1', ['8090:80', '[fd00::9]:9000:91']))).toEqual([
      'tcp 0.0.0.0:8090->80',
      'tcp :::0->80',
      'tcp :::0->91',
    ]);
    dual.gatewayModeIpv4 = 'routed';
    expect(text(plan(state, dual, 'd1', ['8080:80']))).toEqual(['tcp 0.0.0.0:0->80', 'tcp :::0->80']);
    // an existing routed binding is not published twice, and holds no host port
    find(dual, 'd1').ports.push({ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 0, containerPort: 80 }, { proto: 'tcp', hostIp: '::', hostPort: 0, containerPort: 80 });
    expect(thrown(() => plan(state, dual, 'd1', ['80'])).message).toMatch(/80\/tcp of endpoint d1 is already published/);
    dual.gatewayModeIpv4 = 'nat';
    expect(text(plan(state, dual, 'd1', ['8091:80']))).toEqual(['tcp 0.0.0.0:8091->80']); // the v6 side is already open
  });
});

describe('matchBindings (unpublish)', () => {
  const d1Ports: Port[] = [
    { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 },
    { proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
    { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 9090, containerPort: 80 },
    { proto: 'udp', hostIp: '0.0.0.0', hostPort: 8053, containerPort: 53 },
  ];
  const setup = () => {
    const { dual } = world();
    find(dual, 'd1').ports = structuredClone(d1Ports);
    return dual;
  };
  const m = (specs: string[]) => {
    const dual = setup();
    return text(matchBindings(dual, find(dual, 'd1'), specs.flatMap(parsePortSpec)));
  };
  it('matches by container port and protocol, and by host IP and port when given', () => {
    expect(m(['80'])).toEqual(['tcp 0.0.0.0:8080->80', 'tcp :::8080->80', 'tcp 127.0.0.1:9090->80']);
    expect(m(['8080:80'])).toEqual(['tcp 0.0.0.0:8080->80', 'tcp :::8080->80']);
    expect(m(['[::]:8080:80'])).toEqual(['tcp :::8080->80']);
    expect(m(['127.0.0.1::80'])).toEqual(['tcp 127.0.0.1:9090->80']);
    expect(m(['9000-9100:80'])).toEqual(['tcp 127.0.0.1:9090->80']);
    expect(m(['53/udp', '8080:80'])).toEqual(['tcp 0.0.0.0:8080->80', 'tcp :::8080->80', 'udp 0.0.0.0:8053->53']);
  });
  it('is not found (3) when a SPEC matches nothing', () => {
    for (const spec of ['53', '81', '8081:80', '10.0.0.1:8080:80', '80/sctp']) {
      const e = thrown(() => m([spec]));
      expect(e.exitCode, spec).toBe(3);
      expect(e.message).toContain(`matches "${spec}"`);
    }
  });
});

describe('conntrack', () => {
  const lines = (n: Network, e: string, ports: Port[]) => flowFilters(n, find(n, e), ports).map((f) => f.line);

  it('selects flows to the host port, twins in one filter, per family otherwise', () => {
    const { dual } = world();
    expect(
      lines(dual, 'd1', [
        { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 },
        { proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
        { proto: 'udp', hostIp: '0.0.0.0', hostPort: 8053, containerPort: 53 },
        { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 },
        { proto: 'tcp', hostIp: 'fd00::9', hostPort: 443, containerPort: 443 },
      ]),
    ).toEqual([
      '-D -p tcp --orig-port-dst 8080',
      '-D -f ipv4 -p udp --orig-port-dst 8053',
      '-D -p udp --orig-dst 127.0.0.1 --orig-port-dst 5353',
      '-D -p tcp --orig-dst fd00::9 --orig-port-dst 443',
    ]);
  });

  it('selects flows straight to the container port in routed mode', () => {
    const { dual } = world();
    dual.gatewayModeIpv6 = 'routed';
    expect(lines(dual, 'd1', [{ proto: 'sctp', hostIp: '::', hostPort: 0, containerPort: 80 }])).toEqual([
      '-D -p sctp --orig-dst fd00:1::2 --orig-port-dst 80',
    ]);
    expect(lines(dual, 'd1', [])).toEqual([]);
  });

  const listing = `tcp      6 431999 ESTABLISHED src=198.18.0.2 dst=198.18.0.1 sport=40000 dport=8080 src=10.1.0.2 dst=198.18.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1
udp      17 29 src=fd98::2 dst=FD98:0::1 sport=5000 dport=8053 [UNREPLIED] src=fd98::1 dst=fd98::2 sport=8053 dport=5000 mark=0 use=1
icmp     1 29 src=198.18.0.2 dst=198.18.0.1 type=8 code=0 id=7 src=198.18.0.1 dst=198.18.0.2 type=0 code=0 id=7 mark=0 use=1
sctp     132 3 ESTABLISHED src=10.1.0.3 dst=127.0.0.1 sport=1 dport=5353 src=127.0.0.1 dst=10.1.0.3 sport=5353 dport=1 mark=0 use=1
`;

  it('reads the original destination of each listed flow', () => {
    expect(parseConntrackList(listing)).toEqual([
      { proto: 'tcp', dst: '198.18.0.1', dport: 8080 },
      { proto: 'udp', dst: 'fd98::1', dport: 8053 },
      { proto: 'sctp', dst: '127.0.0.1', dport: 5353 },
    ]);
    expect(parseConntrackList('')).toEqual([]);
  });

  it('deletes only with the filters that match a listed flow', () => {
    const { dual } = world();
    const flows = parseConntrackList(listing);
    const hits = (ports: Port[]) =>
      flowFilters(dual, find(dual, 'd1'), ports)
        .filter((f) => flows.some((x) => filterMatches(f, x)))
        .map((f) => f.line);
    expect(hits([{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }])).toEqual(['-D -f ipv4 -p tcp --orig-port-dst 8080']);
    expect(hits([{ proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 }])).toEqual([]);
    expect(hits([{ proto: 'udp', hostIp: '::', hostPort: 8053, containerPort: 53 }])).toHaveLength(1);
    expect(hits([{ proto: 'udp', hostIp: '0.0.0.0', hostPort: 8053, containerPort: 53 }])).toEqual([]);
    expect(hits([{ proto: 'sctp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 }])).toHaveLength(1);
    expect(hits([{ proto: 'sctp', hostIp: '127.0.0.2', hostPort: 5353, containerPort: 53 }])).toEqual([]);
    expect(hits([{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 9999, containerPort: 80 }])).toEqual([]);
  });
});
