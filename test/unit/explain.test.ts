// explain's pure parts as data: SRC/DST as typed, and the evaluator over brnet's own rule
// model (the rules renderRules writes), hook by hook. The paths against the kernel are in
// test/system/explain.test.ts, measured with traffic.
import { describe, expect, it } from 'vitest';
import { parseQuery } from '../../src/core/explain.ts';
import { type Hit, type Packet, UnknownRule, compile, splitHostPort, walk } from '../../src/firewall/evaluate.ts';
import { DISPATCH, renderRules } from '../../src/firewall/rules.ts';
import { parseIp } from '../../src/net/ipam.ts';
import { BRIDGE_GROUP } from '../../src/net/marks.ts';
import { type State, emptyState } from '../../src/state/schema.ts';
import { ep, net } from '../fixtures/state.ts';

const ip = (s: string) => parseIp(s)!;
const web = net('web', 'a', { endpoints: [ep('app', '10.1.0.2/24', { ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }] }), ep('two', '10.1.0.3/24')] });
const quiet = net('quiet', 'b', { icc: false, ipv4: { subnet: '10.2.0.0/24', gateway: '10.2.0.1', ipRange: null, auxAddresses: {}, allocated: false }, endpoints: [ep('c', '10.2.0.2/24'), ep('d', '10.2.0.3/24')] });
const state: State = { ...emptyState(), instance: '0123abcd', networks: [web, quiet] };
const rules = renderRules(state)[4];

const packet = (over: Partial<Packet>): Packet => ({
  src: ip('198.18.0.2'),
  dst: ip('198.18.0.1'),
  proto: 'tcp',
  dport: 8080,
  iif: 'up0',
  oif: null,
  srcLocal: false,
  dstLocal: true,
  iifGroup: null,
  oifGroup: null,
  ...over,
});

describe('SRC and DST as typed', () => {
  it('endpoints, addresses, ports and protocols', () => {
    expect(parseQuery('web/app', 'db/pg:5432')).toMatchObject({ fromSide: { kind: 'endpoint', network: 'web', endpoint: 'app' }, toSide: { kind: 'endpoint', network: 'db', endpoint: 'pg' }, proto: 'tcp', port: 5432 });
    expect(parseQuery('host', '127.0.0.1:53/udp')).toMatchObject({ fromSide: { kind: 'host' }, proto: 'udp', port: 53, to: '127.0.0.1' });
    expect(parseQuery('198.51.100.7', '[fd00::2]:80')).toMatchObject({ fromSide: { kind: 'ip' }, toSide: { kind: 'ip' }, port: 80, to: 'fd00::2' });
    expect(parseQuery('web/app', 'fd00::2')).toMatchObject({ proto: 'icmp', port: null, to: 'fd00::2' });
    expect(parseQuery('web/app', 'web/two')).toMatchObject({ proto: 'icmp', port: null });
  });

  it('malformed: exit 2 with what is wrong', () => {
    for (const [to, why] of [
      ['web/app:99999', /invalid port 99999/],
      ['web/app:80/xyz', /invalid protocol/],
      ['10.0.0.1:80/icmp', /icmp has no ports/],
      ['10.0.0.1/tcp', /tcp needs a port/],
      ['not-an-ip', /not NETWORK\/ENDPOINT or an IP address/],
      ['', /--to is required/],
    ] as const) {
      expect(() => parseQuery('host', to), to).toThrow(why);
      try {
        parseQuery('host', to);
      } catch (e: any) {
        expect(e.exitCode).toBe(2);
      }
    }
    expect(() => parseQuery('300.1.1.1', '10.0.0.1:80')).toThrow(/invalid --from/);
  });
});

describe('the evaluator over the rule model', () => {
  it('a published port from outside: DNAT to the endpoint, by the rule of web:app', () => {
    const hits: Hit[] = [];
    expect(walk(rules, 'nat', DISPATCH.dnat, packet({}), hits)).toEqual({ kind: 'dnat', to: '10.1.0.2:80' });
    expect(hits.at(-1)).toMatchObject({ table: 'nat', owner: 'web:app' });
    expect(hits.map((h) => h.chain)).toEqual(['BRNET-DNAT', 'BRNET-DNAT-aaaaaaaaaaaa']);
  });

  it('then FORWARD into the bridge: the published port is accepted, another port dropped', () => {
    const into = (dport: number) => packet({ dst: ip('10.1.0.2'), dport, dstLocal: false, oif: web.bridge, oifGroup: BRIDGE_GROUP });
    const hits: Hit[] = [];
    expect(walk(rules, 'filter', DISPATCH.forward, into(80), hits).kind).toBe('accept');
    expect(hits.at(-1)).toMatchObject({ chain: 'BRNET-IN-aaaaaaaaaaaa', owner: 'web:app' });
    const other: Hit[] = [];
    expect(walk(rules, 'filter', DISPATCH.forward, into(81), other).kind).toBe('drop');
    expect(other.at(-1)!.rule).toMatch(/-j DROP$/);
  });

  it('direct access to a nat network from outside is dropped in raw; from its own bridge it is not', () => {
    expect(walk(rules, 'raw', DISPATCH.raw, packet({ dst: ip('10.1.0.2'), dport: 80, dstLocal: false }), []).kind).toBe('drop');
    expect(walk(rules, 'raw', DISPATCH.raw, packet({ dst: ip('10.1.0.2'), dport: 80, dstLocal: false, iif: web.bridge }), []).kind).toBe('return');
    // the gateway, the host's own address, stays reachable
    expect(walk(rules, 'raw', DISPATCH.raw, packet({ dst: ip('10.1.0.1'), dstLocal: true }), []).kind).toBe('return');
  });

  it('ICC off drops between endpoints of the network; ICC on accepts; replies are accepted as established', () => {
    const between = (n: typeof web, a: string, b: string) => packet({ src: ip(a), dst: ip(b), dport: 80, iif: n.bridge, oif: n.bridge, dstLocal: false });
    expect(walk(rules, 'filter', DISPATCH.forward, between(quiet, '10.2.0.2', '10.2.0.3'), []).kind).toBe('drop');
    expect(walk(rules, 'filter', DISPATCH.forward, between(web, '10.1.0.3', '10.1.0.2'), []).kind).toBe('accept');
    const reply = packet({ src: ip('198.18.0.2'), dst: ip('10.1.0.3'), oif: web.bridge, dstLocal: false, established: true });
    const hits: Hit[] = [];
    expect(walk(rules, 'filter', DISPATCH.forward, reply, hits).kind).toBe('accept');
    expect(hits[0]!.rule).toMatch(/--ctstate RELATED,ESTABLISHED/);
  });

  it('leaving the network: masquerade; the host reaching a published port: masquerade to a bridge-local source', () => {
    const out = packet({ src: ip('10.1.0.3'), dst: ip('198.18.0.2'), iif: web.bridge, oif: 'up0', dstLocal: false });
    expect(walk(rules, 'nat', DISPATCH.post, out, []).kind).toBe('masquerade');
    const host = packet({ src: ip('127.0.0.1'), dst: ip('10.1.0.2'), iif: null, oif: web.bridge, srcLocal: true, dstLocal: false, dport: 80 });
    expect(walk(rules, 'nat', DISPATCH.post, host, []).kind).toBe('masquerade');
  });

  it('what it cannot read it says, never guesses', () => {
    expect(() => compile('-m set --match-set x src -j DROP')).toThrow(UnknownRule);
    expect(() => compile('-i eth0')).toThrow(/without a target/);
    expect(splitHostPort('[fd00::2]:80')).toEqual({ ip: ip('fd00::2'), port: 80 });
    expect(splitHostPort('10.1.0.2:8080')).toEqual({ ip: ip('10.1.0.2'), port: 8080 });
  });
});
