// The userland proxy: which bindings get one, the steps that start and stop them, drift, the
// allocator, rules and sysctls of the proxy mode, the setting's migration, the state shape and
// the views — all as data. Then the role itself and startProxy on loopback only: a bundle of
// src/main.ts (as dist/cli.js is built) run as `__proxy`, against echo servers in this process
// on 127.0.0.1, on ports the kernel picks. No root, no kernel state.
import { type ChildProcess, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applySetting, setConfig } from '../../src/core/config.ts';
import type { Host } from '../../src/core/host.ts';
import { type HostPorts, planBindings } from '../../src/core/port-bindings.ts';
import { noteProxySockets, proxyDrift, proxyOnly, proxySpecOf, proxySteps } from '../../src/core/proxy-ports.ts';
import { BrnetError } from '../../src/errors.ts';
import { renderNft } from '../../src/firewall/nft-rules.ts';
import { renderRules } from '../../src/firewall/rules.ts';
import { networkSysctls } from '../../src/net/bridge.ts';
import type { HostView } from '../../src/net/host.ts';
import { parsePortSpec } from '../../src/net/ports.ts';
import { type FoundProxy, type ProxySpec, describeProxy, findProxies, proxyAlive, roleArgv, selfCommand, startProxy, stopProxy } from '../../src/net/proxy.ts';
import { parseProxyArgs, proxyArgs } from '../../src/net/proxy-role.ts';
import { type Network, type Port, PortSchema, type State, StateSchema, emptyState } from '../../src/state/schema.ts';
import { endpointView, portView } from '../../src/ui/views.ts';
import { ep, net as network } from '../fixtures/state.ts';
import { thrown } from '../helpers/errors.ts';

const INSTANCE = '0123abcd';
const MARK = `brnet@${INSTANCE}:web:app`;
/** No process ever has this pid: pids are below pid_max, which is at most 2^22. */
const NO_PID = 4194304;

const v6fc = (subnet: string, gateway: string) => ({ subnet, gateway, ipRange: null, auxAddresses: {}, allocated: false });
const tcp = (hostIp: string, hostPort: number, containerPort: number, over: Partial<Port> = {}): Port => ({ proto: 'tcp', hostIp, hostPort, containerPort, ...over });

/**
 * web (dual stack): app (dual) with TCP on both families, UDP on loopback and SCTP; v4 (IPv4
 * only) with TCP on 0.0.0.0 and its :: twin for the proxy, and one on an IPv6 address.
 * inner (internal) and routed (a routed opening, host port 0) besides.
 */
function world(proxy = true): State {
  const s = emptyState();
  s.instance = INSTANCE;
  s.config.userlandProxy = proxy;
  s.networks = [
    network('web', 'a', {
      ipv6: v6fc('fd00:1::/64', 'fd00:1::1'),
      endpoints: [
        ep('app', '10.1.0.2/24', {
          ipv6: 'fd00:1::2/64',
          ports: [tcp('0.0.0.0', 8080, 80), tcp('::', 8080, 80), { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 }, { proto: 'sctp', hostIp: '0.0.0.0', hostPort: 3868, containerPort: 3868 }],
        }),
        ep('v4', '10.1.0.3/24', { ports: [tcp('0.0.0.0', 9000, 90), tcp('::', 9000, 90), tcp('fd00::9', 9001, 91)] }),
      ],
    }),
    network('inner', 'c', {
      ipv4: v6fc('10.3.0.0/24', '10.3.0.1'),
      internal: true,
      endpoints: [ep('i', '10.3.0.2/24', { ports: [tcp('0.0.0.0', 7000, 70)] })],
    }),
    network('routed', 'd', {
      ipv4: v6fc('10.4.0.0/24', '10.4.0.1'),
      gatewayModeIpv4: 'routed',
      endpoints: [ep('srv', '10.4.0.2/24', { ports: [tcp('0.0.0.0', 0, 443)] })],
    }),
  ];
  return s;
}

const netOf = (s: State, name: string) => s.networks.find((n) => n.name === name)!;
const epOf = (s: State, n: string, e: string) => netOf(s, n).endpoints.find((x) => x.name === e)!;
const clone = (s: State): State => structuredClone(s);
const shows = (steps: { show: string[] }[]) => steps.flatMap((s) => s.show);
/** Gives every TCP/UDP binding of `s` that has a proxy in proxy mode a record pid 100, 101, … */
function recordAll(s: State): State {
  let pid = 100;
  for (const n of s.networks) for (const e of n.endpoints) for (const p of e.ports) if (proxySpecOf(s, { net: n, ep: e, port: p })) p.proxy = { pid: pid++, start: '5000' };
  return s;
}

describe('the role arguments', () => {
  const spec: ProxySpec = { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, toIp: '10.1.0.2', toPort: 80 };

  it('parses a mark and a spec, both families and both protocols, and is the inverse of proxyArgs', () => {
    expect(parseProxyArgs([MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '80'])).toEqual({ mark: MARK, spec });
    const udp6: ProxySpec = { proto: 'udp', hostIp: '::', hostPort: 53, toIp: '10.1.0.3', toPort: 5353 };
    expect(parseProxyArgs(proxyArgs(MARK, udp6))).toEqual({ mark: MARK, spec: udp6 });
    expect(parseProxyArgs(['brnet:web:app', 'udp', '::1', '1', 'fd00:1::2', '65535'])?.spec).toEqual({ proto: 'udp', hostIp: '::1', hostPort: 1, toIp: 'fd00:1::2', toPort: 65535 });
    expect(proxyArgs(MARK, spec)).toEqual([MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '80']);
    expect(roleArgv(MARK, spec)).toEqual(['__proxy', MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '80']);
  });

  const good = [MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '80'];
  const bad: [string, string[]][] = [
    ['no arguments', []],
    ['five', good.slice(0, 5)],
    ['seven', [...good, 'x']],
    ['a mark not brnet', ['docker', ...good.slice(1)]],
    ['sctp', [MARK, 'sctp', ...good.slice(2)]],
    ['TCP in capitals', [MARK, 'TCP', ...good.slice(2)]],
    ['a host name', [MARK, 'tcp', 'localhost', '8080', '10.1.0.2', '80']],
    ['an empty host IP', [MARK, 'tcp', '', '8080', '10.1.0.2', '80']],
    ['a bad IPv4', [MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.300', '80']],
    ['a CIDR', [MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2/24', '80']],
    ['host port 0', [MARK, 'tcp', '0.0.0.0', '0', '10.1.0.2', '80']],
    ['host port 65536', [MARK, 'tcp', '0.0.0.0', '65536', '10.1.0.2', '80']],
    ['a negative port', [MARK, 'tcp', '0.0.0.0', '-1', '10.1.0.2', '80']],
    ['a port with junk', [MARK, 'tcp', '0.0.0.0', '8080x', '10.1.0.2', '80']],
    ['a port in exponent form', [MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '1e3']],
    ['a port with a space', [MARK, 'tcp', '0.0.0.0', ' 8080', '10.1.0.2', '80']],
    ['six digits', [MARK, 'tcp', '0.0.0.0', '008080', '10.1.0.2', '80']],
    ['an empty to-port', [MARK, 'tcp', '0.0.0.0', '8080', '10.1.0.2', '']],
  ];
  it.each(bad)('refuses %s', (_, args) => expect(parseProxyArgs(args)).toBeNull());

  it('describes a spec as host -> endpoint, IPv6 in brackets', () => {
    expect(describeProxy(spec)).toBe('0.0.0.0:8080/tcp -> 10.1.0.2:80');
    expect(describeProxy({ proto: 'udp', hostIp: '::1', hostPort: 53, toIp: 'fd00:1::2', toPort: 5353 })).toBe('[::1]:53/udp -> [fd00:1::2]:5353');
  });

  it('runs itself again: Node with its script, a Bun executable by itself', () => {
    const saved = process.argv[1];
    try {
      process.argv[1] = '/usr/lib/brnet/dist/cli.js';
      expect(selfCommand()).toEqual([process.execPath, '/usr/lib/brnet/dist/cli.js']);
      process.argv[1] = '/$bunfs/root/brnet';
      expect(selfCommand()).toEqual([process.execPath]);
    } finally {
      process.argv[1] = saved as string;
    }
  });
});

describe('proxySpecOf and proxyOnly', () => {
  const spec = (s: State, n: string, e: string, i: number) => proxySpecOf(s, { net: netOf(s, n), ep: epOf(s, n, e), port: epOf(s, n, e).ports[i]! });

  it('gives each TCP and UDP binding of a NAT network a proxy to the endpoint address of its family', () => {
    const s = world();
    expect(spec(s, 'web', 'app', 0)).toEqual({ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, toIp: '10.1.0.2', toPort: 80 });
    expect(spec(s, 'web', 'app', 1)).toEqual({ proto: 'tcp', hostIp: '::', hostPort: 8080, toIp: 'fd00:1::2', toPort: 80 });
    expect(spec(s, 'web', 'app', 2)).toEqual({ proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, toIp: '10.1.0.2', toPort: 53 });
  });

  it('carries an IPv6 host address to the IPv4 address of an endpoint without IPv6 (6-to-4)', () => {
    const s = world();
    expect(spec(s, 'web', 'v4', 1)).toEqual({ proto: 'tcp', hostIp: '::', hostPort: 9000, toIp: '10.1.0.3', toPort: 90 });
    expect(spec(s, 'web', 'v4', 2)).toEqual({ proto: 'tcp', hostIp: 'fd00::9', hostPort: 9001, toIp: '10.1.0.3', toPort: 91 });
  });

  it('gives none to SCTP, internal networks, routed openings, endpoints without an address, or with the proxy off', () => {
    const s = world();
    expect(spec(s, 'web', 'app', 3)).toBeNull(); // sctp
    expect(spec(s, 'inner', 'i', 0)).toBeNull();
    expect(spec(s, 'routed', 'srv', 0)).toBeNull(); // host port 0
    const noAddr = world();
    epOf(noAddr, 'web', 'v4').ipv4 = null;
    expect(spec(noAddr, 'web', 'v4', 0)).toBeNull();
    const off = world(false);
    for (const [e, i] of [['app', 0], ['app', 1], ['v4', 1]] as const) expect(spec(off, 'web', e, i)).toBeNull();
  });

  it('proxyOnly: an IPv6 host address on an endpoint without IPv6, nothing else', () => {
    const s = world();
    const app = epOf(s, 'web', 'app');
    const v4 = epOf(s, 'web', 'v4');
    expect(v4.ports.map((p) => proxyOnly(v4, p))).toEqual([false, true, true]);
    expect(app.ports.map((p) => proxyOnly(app, p))).toEqual([false, false, false, false]);
  });
});

describe('proxySteps', () => {
  it('on a publish: starts only the new binding, and the shared ones keep their records', () => {
    const from = recordAll(world());
    const to = { ...from, networks: from.networks.map((n) => ({ ...n, endpoints: n.endpoints.map((e) => ({ ...e, ports: [...e.ports] })) })) };
    epOf(to, 'web', 'app').ports.push(tcp('0.0.0.0', 9090, 90));
    expect(shows(proxySteps(from, to))).toEqual(['# start userland proxy 0.0.0.0:9090/tcp -> 10.1.0.2:90 (web/app)']);
  });

  it('nothing changes, nothing to do: proxies on and recorded, or off and none recorded', () => {
    const on = recordAll(world());
    expect(proxySteps(on, on)).toEqual([]);
    expect(proxySteps(on, clone(on))).toEqual([]);
    const off = world(false);
    expect(proxySteps(off, clone(off))).toEqual([]);
  });

  it("a planner's copy of a binding, without the record, keeps the proxy (no stop, no start)", () => {
    const from = recordAll(world());
    const to = clone(from);
    for (const n of to.networks) for (const e of n.endpoints) for (const p of e.ports) delete p.proxy;
    expect(proxySteps(from, to)).toEqual([]);
    expect(epOf(to, 'web', 'app').ports[0]!.proxy).toEqual(epOf(from, 'web', 'app').ports[0]!.proxy);
    expect(epOf(to, 'web', 'v4').ports[2]!.proxy).toEqual(epOf(from, 'web', 'v4').ports[2]!.proxy);
    expect(epOf(to, 'web', 'app').ports[3]!.proxy).toBeUndefined(); // sctp never had one
  });

  it('on an unpublish: stops the recorded proxy by its pid', () => {
    const from = recordAll(world());
    const to = clone(from);
    epOf(to, 'web', 'app').ports.splice(0, 1);
    expect(shows(proxySteps(from, to))).toEqual(['# stop userland proxy 100 0.0.0.0:8080/tcp -> 10.1.0.2:80 (web/app)']);
  });

  it('a port handed from one binding to another in one call: the stop comes before the start', () => {
    const from = recordAll(world());
    const to = clone(from);
    const [moved] = epOf(to, 'web', 'app').ports.splice(0, 1);
    delete moved!.proxy;
    epOf(to, 'web', 'v4').ports.push(moved!);
    expect(shows(proxySteps(from, to))).toEqual([
      '# stop userland proxy 100 0.0.0.0:8080/tcp -> 10.1.0.2:80 (web/app)',
      '# start userland proxy 0.0.0.0:8080/tcp -> 10.1.0.3:80 (web/v4)',
    ]);
  });

  it('an endpoint made again with another address: its proxy is replaced, and the copy loses the old record', () => {
    const from = recordAll(world());
    const to = clone(from);
    const v4 = epOf(to, 'web', 'v4');
    v4.ipv4 = '10.1.0.9/24';
    const steps = shows(proxySteps(from, to));
    expect(steps.slice(0, 3)).toEqual([
      '# stop userland proxy 103 0.0.0.0:9000/tcp -> 10.1.0.3:90 (web/v4)',
      '# stop userland proxy 104 [::]:9000/tcp -> 10.1.0.3:90 (web/v4)',
      '# stop userland proxy 105 [fd00::9]:9001/tcp -> 10.1.0.3:91 (web/v4)',
    ]);
    expect(steps.slice(3)).toEqual([
      '# start userland proxy 0.0.0.0:9000/tcp -> 10.1.0.9:90 (web/v4)',
      '# start userland proxy [::]:9000/tcp -> 10.1.0.9:90 (web/v4)',
      '# start userland proxy [fd00::9]:9001/tcp -> 10.1.0.9:91 (web/v4)',
    ]);
    for (const p of v4.ports) expect(p.proxy).toBeUndefined();
  });

  it('turning the proxy on starts one for every TCP and UDP binding that can have one', () => {
    const from = world(false);
    const to = { ...from, config: { ...from.config, userlandProxy: true } };
    expect(shows(proxySteps(from, to))).toEqual([
      '# start userland proxy 0.0.0.0:8080/tcp -> 10.1.0.2:80 (web/app)',
      '# start userland proxy [::]:8080/tcp -> [fd00:1::2]:80 (web/app)',
      '# start userland proxy 127.0.0.1:5353/udp -> 10.1.0.2:53 (web/app)',
      '# start userland proxy 0.0.0.0:9000/tcp -> 10.1.0.3:90 (web/v4)',
      '# start userland proxy [::]:9000/tcp -> 10.1.0.3:90 (web/v4)',
      '# start userland proxy [fd00::9]:9001/tcp -> 10.1.0.3:91 (web/v4)',
    ]);
  });

  it('turning it off stops every recorded one', () => {
    const from = recordAll(world());
    const to = { ...from, config: { ...from.config, userlandProxy: false } };
    const steps = shows(proxySteps(from, to));
    expect(steps).toHaveLength(6);
    expect(steps.every((l) => l.startsWith('# stop userland proxy '))).toBe(true);
    expect(steps[0]).toBe('# stop userland proxy 100 0.0.0.0:8080/tcp -> 10.1.0.2:80 (web/app)');
  });

  it('a record left with the proxy off is stopped by pid alone, and nothing is started', () => {
    const from = world(false);
    epOf(from, 'web', 'app').ports[0]!.proxy = { pid: 321, start: '1' };
    expect(shows(proxySteps(from, clone(from)))).toEqual(['# stop userland proxy 321 (web/app)']);
  });

  it('a binding of the proxy mode without a record (its proxy missing) is left to restore: the next change starts only its own', () => {
    const from = recordAll(world());
    delete epOf(from, 'web', 'app').ports[2]!.proxy;
    const to = clone(from);
    epOf(to, 'web', 'app').ports.push(tcp('0.0.0.0', 9090, 90));
    expect(shows(proxySteps(from, to))).toEqual(['# start userland proxy 0.0.0.0:9090/tcp -> 10.1.0.2:90 (web/app)']);
  });
});

describe('proxyDrift', () => {
  const leftover: FoundProxy = {
    pid: 4242,
    start: '777',
    mark: `brnet@${INSTANCE}:web:gone`,
    spec: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 9999, toIp: '10.1.0.9', toPort: 99 },
  };

  it('a binding whose proxy is not running is missing, with a start to repair it', () => {
    const s = world();
    epOf(s, 'web', 'app').ports[0]!.proxy = { pid: NO_PID, start: '1' };
    const asked: string[] = [];
    const d = proxyDrift(s, (prefix) => (asked.push(prefix), []));
    expect(asked).toEqual([`brnet@${INSTANCE}:`]);
    expect(d.drift[0]).toEqual({ kind: 'missing', what: `userland proxy for web/app 0.0.0.0:8080/tcp -> 10.1.0.2:80 (pid ${NO_PID} is not running it)` });
    expect(d.drift[1]).toEqual({ kind: 'missing', what: 'userland proxy for web/app [::]:8080/tcp -> [fd00:1::2]:80' }); // never recorded
    expect(d.drift.map((x) => x.kind)).toEqual(Array(6).fill('missing'));
    expect(d.repair.flatMap((x) => x.show)).toEqual(d.drift.map((x) => `# start ${x.what.replace(/^userland proxy for (\S+) (.*?)( \(pid.*)?$/, 'userland proxy $2 ($1)')}`));
  });

  it('a proxy of this instance that no binding records is left over; its stop comes before every start', () => {
    const s = world();
    const d = proxyDrift(s, () => [leftover]);
    const last = d.drift.length - 1;
    expect(d.drift[last]).toEqual({ kind: 'leftover', what: `userland proxy 4242 0.0.0.0:9999/tcp -> 10.1.0.9:99 (brnet@${INSTANCE}:web:gone)` });
    expect(d.repair[0]!.show).toEqual(['# stop userland proxy 4242 0.0.0.0:9999/tcp -> 10.1.0.9:99']);
    // the starts, four at a time, in one step after it
    expect(d.repair).toHaveLength(2);
    expect(d.repair[1]!.show).toHaveLength(6);
    expect(d.repair[1]!.show.every((x) => x.startsWith('# start '))).toBe(true);
  });

  it('with the proxy off: no binding is missing one, records are dropped, and a living proxy is left over', () => {
    const s = recordAll(world());
    s.config.userlandProxy = false;
    const d = proxyDrift(s, () => [leftover]);
    expect(d.drift).toEqual([{ kind: 'leftover', what: `userland proxy 4242 0.0.0.0:9999/tcp -> 10.1.0.9:99 (brnet@${INSTANCE}:web:gone)` }]);
    expect(d.repair.map((x) => x.show)).toEqual([['# stop userland proxy 4242 0.0.0.0:9999/tcp -> 10.1.0.9:99']]);
    for (const n of s.networks) for (const e of n.endpoints) for (const p of e.ports) expect(p.proxy).toBeUndefined();
  });

  it('a state without an instance looks for no processes', () => {
    const s = world(false);
    s.instance = null;
    let asked = false;
    expect(proxyDrift(s, () => ((asked = true), [leftover]))).toEqual({ drift: [], repair: [] });
    expect(asked).toBe(false);
  });
});

// --- the allocator ------------------------------------------------------------------------------

function hostOf(over: Partial<HostPorts> = {}): HostPorts {
  return { listeners: () => [], ephemeral: () => ({ start: 40000, end: 40005, reserved: new Set() }), hostIpv6: () => true, ...over };
}
const text = (ps: Port[]) => ps.map((p) => `${p.proto} ${p.hostIp}:${p.hostPort}->${p.containerPort}`);

function allocWorld(proxy: boolean): { state: State; web: Network; dual: Network } {
  const s = emptyState();
  s.config.userlandProxy = proxy;
  const web = network('web', 'a', { endpoints: [ep('new', '10.1.0.4/24')] });
  const dual = network('dual', 'b', {
    ipv4: v6fc('10.2.0.0/24', '10.2.0.1'),
    ipv6: v6fc('fd00:1::/64', 'fd00:1::1'),
    endpoints: [ep('d1', '10.2.0.2/24', { ipv6: 'fd00:1::2/64' }), ep('d6', null, { ipv6: 'fd00:1::3/64' })],
  });
  s.networks = [web, dual];
  return { state: s, web, dual };
}
const plan = (state: State, n: Network, e: string, specs: string[], host = hostOf()) =>
  planBindings(state, n, n.endpoints.find((x) => x.name === e)!, specs.flatMap(parsePortSpec), host);

describe('planBindings with the userland proxy', () => {
  it('binds an IPv4-only endpoint on 0.0.0.0 and :: for TCP and UDP, not for SCTP, not on a host without IPv6', () => {
    const { state, web } = allocWorld(true);
    expect(text(plan(state, web, 'new', ['8080:80', '53:53/udp']))).toEqual(['tcp 0.0.0.0:8080->80', 'tcp :::8080->80', 'udp 0.0.0.0:53->53', 'udp :::53->53']);
    expect(text(plan(state, web, 'new', ['3868:3868/sctp']))).toEqual(['sctp 0.0.0.0:3868->3868']);
    expect(text(plan(state, web, 'new', ['8080:80'], hostOf({ hostIpv6: () => false })))).toEqual(['tcp 0.0.0.0:8080->80']);
    expect(text(plan(state, web, 'new', ['127.0.0.1:8080:80']))).toEqual(['tcp 127.0.0.1:8080->80']);
    // an ephemeral port free in both families
    const taken = allocWorld(true);
    const host = hostOf({ listeners: () => [{ proto: 'tcp', ip: '::1', port: 40000 }] });
    expect(text(plan(taken.state, taken.web, 'new', ['80'], host))).toEqual(['tcp 0.0.0.0:40001->80', 'tcp :::40001->80']);
  });

  it('without the proxy, the same endpoint is bound on 0.0.0.0 alone', () => {
    const { state, web } = allocWorld(false);
    expect(text(plan(state, web, 'new', ['8080:80', '53:53/udp']))).toEqual(['tcp 0.0.0.0:8080->80', 'udp 0.0.0.0:53->53']);
  });

  it('the :: twin of an IPv4-only endpoint clashes with IPv6 bindings on the port (4)', () => {
    const { state, web, dual } = allocWorld(true);
    dual.endpoints[1]!.ports.push(tcp('::', 8080, 80));
    const e = thrown(() => plan(state, web, 'new', ['8080:80']));
    expect(e.exitCode).toBe(4);
    expect(e.message).toBe('cannot publish "8080:80": [::]:8080/tcp is in use: already published by endpoint dual/d6 ([::]:8080->80/tcp)');
    const off = allocWorld(false);
    off.dual.endpoints[1]!.ports.push(tcp('::', 8080, 80));
    expect(text(plan(off.state, off.web, 'new', ['8080:80']))).toEqual(['tcp 0.0.0.0:8080->80']);
  });

  it("a proxy's own socket is not someone else's listener: recorded in the state, or when the call began (a batch's hand-over)", () => {
    const { state, web, dual } = allocWorld(true);
    // d6's proxy holds [::]:8080 with IPV6_V6ONLY, which /proc/net does not show
    dual.endpoints[1]!.ports.push(tcp('::', 8080, 80, { proxy: { pid: NO_PID, start: '1' } }));
    const v6listener = hostOf({ listeners: () => [{ proto: 'tcp', ip: '::', port: 8080 }] });
    expect(text(plan(state, web, 'new', ['0.0.0.0:8080:80'], v6listener))).toEqual(['tcp 0.0.0.0:8080->80']);
    // the same listener, no record: someone else's (4)
    const other = allocWorld(true);
    expect(thrown(() => plan(other.state, other.web, 'new', ['0.0.0.0:8080:80'], v6listener)).exitCode).toBe(4);
    // line 1 of a batch unpublished 9090 from d1 (its proxy still runs), line 2 publishes it on new
    const batch = allocWorld(true);
    batch.dual.endpoints[0]!.ports.push(tcp('0.0.0.0', 9090, 90, { proxy: { pid: NO_PID, start: '2' } }));
    noteProxySockets(batch.state);
    batch.dual.endpoints[0]!.ports = [];
    const held = hostOf({ listeners: () => [{ proto: 'tcp', ip: '0.0.0.0', port: 9090 }] });
    expect(text(plan(batch.state, batch.web, 'new', ['0.0.0.0:9090:90'], held))).toEqual(['tcp 0.0.0.0:9090->90']);
  });

  it('[::1] is allowed with the proxy for TCP and UDP, on any endpoint with an address', () => {
    const { state, web, dual } = allocWorld(true);
    expect(text(plan(state, web, 'new', ['[::1]:8080:80', '[::1]:53:53/udp']))).toEqual(['tcp ::1:8080->80', 'udp ::1:53->53']);
    expect(text(plan(state, dual, 'd1', ['[::1]:8080:80']))).toEqual(['tcp ::1:8080->80']);
    expect(text(plan(state, dual, 'd6', ['[::1]:8080:80']))).toEqual(['tcp ::1:8080->80']);
  });

  it('[::1] is refused without the proxy, and for SCTP with it (2, USAGE)', () => {
    const off = allocWorld(false);
    const e = thrown(() => plan(off.state, off.dual, 'd1', ['[::1]:8080:80']));
    expect([e.exitCode, e.code]).toEqual([2, 'USAGE']);
    expect(e.message).toBe('cannot publish "[::1]:8080:80" on ::1: IPv6 loopback cannot be forwarded to an endpoint without the userland proxy');
    expect(e.hint).toMatch(/brnet config set userland-proxy true/);
    const on = allocWorld(true);
    const s = thrown(() => plan(on.state, on.dual, 'd1', ['[::1]:3868:3868/sctp']));
    expect([s.exitCode, s.code]).toEqual([2, 'USAGE']);
    expect(s.message).toBe('cannot publish "[::1]:3868:3868/sctp" on ::1: IPv6 loopback cannot be forwarded to an endpoint over SCTP');
    expect(s.hint).toBe('publish on 127.0.0.1');
    // an IPv4-only endpoint over SCTP has no IPv6 at all
    expect(thrown(() => plan(on.state, on.web, 'new', ['[::1]:3868:3868/sctp'])).message).toMatch(/endpoint new has no IPv6 address/);
  });

  it('an explicit IPv6 host IP on an IPv4-only endpoint: allowed with the proxy, refused without it or over SCTP', () => {
    const on = allocWorld(true);
    expect(text(plan(on.state, on.web, 'new', ['[fd00::9]:8080:80']))).toEqual(['tcp fd00::9:8080->80']);
    expect(text(plan(on.state, on.web, 'new', ['[::]:8080:80']))).toEqual(['tcp :::8080->80']);
    on.web.hostBindingIp = 'fd00::1';
    expect(text(plan(on.state, on.web, 'new', ['8080:80']))).toEqual(['tcp fd00::1:8080->80']);
    expect(thrown(() => plan(on.state, on.web, 'new', ['[fd00::9]:3868:3868/sctp'])).exitCode).toBe(2);
    const off = allocWorld(false);
    const e = thrown(() => plan(off.state, off.web, 'new', ['[fd00::9]:8080:80']));
    expect([e.exitCode, e.code]).toEqual([2, 'USAGE']);
    expect(e.message).toBe('cannot publish "[fd00::9]:8080:80" on fd00::9: endpoint new has no IPv6 address');
  });

  it('no :: twin where IPv6 is routed: a routed binding would open an IPv6 address the endpoint has not', () => {
    const { state, web } = allocWorld(true);
    web.ipv6 = v6fc('fd00:2::/64', 'fd00:2::1');
    web.gatewayModeIpv6 = 'routed';
    // was ['tcp 0.0.0.0:8080->80', 'tcp :::0->80'], the second an opening of nothing
    expect(text(plan(state, web, 'new', ['8080:80']))).toEqual(['tcp 0.0.0.0:8080->80']);
    expect(thrown(() => plan(state, web, 'new', ['[::]:8080:80'])).message).toMatch(/endpoint new has no IPv6 address/);
    web.gatewayModeIpv6 = 'nat';
    expect(text(plan(state, web, 'new', ['8080:80']))).toEqual(['tcp 0.0.0.0:8080->80', 'tcp :::8080->80']);
  });

  it('an IPv6-only endpoint gets no IPv4 binding from the proxy (no 4-to-6)', () => {
    const { state, dual } = allocWorld(true);
    expect(text(plan(state, dual, 'd6', ['8080:80']))).toEqual(['tcp :::8080->80']);
    expect(thrown(() => plan(state, dual, 'd6', ['127.0.0.1:8080:80'])).message).toMatch(/has no IPv4 address/);
  });
});

// --- rules and sysctls ----------------------------------------------------------------------------

/** web (dual stack): app (dual) with TCP, UDP, SCTP on both families; v4 (IPv4 only) with a :: twin. */
function ruleState(proxy: boolean): State {
  const s = emptyState();
  s.instance = INSTANCE;
  s.config.userlandProxy = proxy;
  s.networks = [
    network('web', 'a', {
      ipv6: v6fc('fd00:1::/64', 'fd00:1::1'),
      endpoints: [
        ep('app', '10.1.0.2/24', {
          ipv6: 'fd00:1::2/64',
          ports: [
            tcp('0.0.0.0', 8080, 80),
            tcp('::', 8080, 80),
            { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 },
            { proto: 'sctp', hostIp: '0.0.0.0', hostPort: 3868, containerPort: 3868 },
            { proto: 'sctp', hostIp: '::', hostPort: 3868, containerPort: 3868 },
          ],
        }),
        ep('v4', '10.1.0.3/24', { ports: [tcp('0.0.0.0', 9000, 90), tcp('::', 9000, 90)] }),
      ],
    }),
  ];
  return s;
}
const BR = 'br-aaaaaaaaaaaa';
const tagOf = (owner: string) => `-m comment --comment brnet@${INSTANCE}:${owner}`;

describe('renderRules with the userland proxy', () => {
  it('leaves loopback to the proxy at the head of BRNET-DNAT, in each family', () => {
    const rs = renderRules(ruleState(true));
    expect(rs[4].nat.get('BRNET-DNAT')).toEqual([`-d 127.0.0.0/8 ${tagOf('userland-proxy')} -j RETURN`, `${tagOf('web')} -j BRNET-DNAT-aaaaaaaaaaaa`]);
    expect(rs[6].nat.get('BRNET-DNAT')).toEqual([`-d ::1/128 ${tagOf('userland-proxy')} -j RETURN`, `${tagOf('web')} -j BRNET-DNAT-aaaaaaaaaaaa`]);
  });

  it("DNATs only what does not come from the endpoint's own bridge, except SCTP", () => {
    const rs = renderRules(ruleState(true));
    expect(rs[4].nat.get('BRNET-DNAT-aaaaaaaaaaaa')).toEqual([
      `! -i ${BR} -p tcp -m tcp --dport 8080 ${tagOf('web:app')} -j DNAT --to-destination 10.1.0.2:80`,
      `-d 127.0.0.1/32 ! -i ${BR} -p udp -m udp --dport 5353 ${tagOf('web:app')} -j DNAT --to-destination 10.1.0.2:53`,
      `-p sctp -m sctp --dport 3868 ${tagOf('web:app')} -j DNAT --to-destination 10.1.0.2:3868`,
      `! -i ${BR} -p tcp -m tcp --dport 9000 ${tagOf('web:v4')} -j DNAT --to-destination 10.1.0.3:90`,
    ]);
    // the :: twin of the IPv4-only endpoint has no rule: only the proxy serves it
    expect(rs[6].nat.get('BRNET-DNAT-aaaaaaaaaaaa')).toEqual([
      `! -s fe80::/10 ! -i ${BR} -p tcp -m tcp --dport 8080 ${tagOf('web:app')} -j DNAT --to-destination [fd00:1::2]:80`,
      `! -s fe80::/10 -p sctp -m sctp --dport 3868 ${tagOf('web:app')} -j DNAT --to-destination [fd00:1::2]:3868`,
    ]);
  });

  it('masquerades neither local sources nor hairpins, except the hairpin of SCTP', () => {
    const rs = renderRules(ruleState(true));
    expect(rs[4].nat.get('BRNET-POST-aaaaaaaaaaaa')).toEqual([
      `-s 10.1.0.0/24 ! -o ${BR} ${tagOf('web')} -j MASQUERADE`,
      `-s 10.1.0.2/32 -d 10.1.0.2/32 -p sctp -m sctp --dport 3868 ${tagOf('web:app')} -j MASQUERADE`,
    ]);
    expect(rs[6].nat.get('BRNET-POST-aaaaaaaaaaaa')).toEqual([
      `-s fd00:1::/64 ! -o ${BR} ${tagOf('web')} -j MASQUERADE`,
      `-s fd00:1::2/128 -d fd00:1::2/128 -p sctp -m sctp --dport 3868 ${tagOf('web:app')} -j MASQUERADE`,
    ]);
    for (const f of [4, 6] as const) for (const rules of rs[f].nat.values()) for (const r of rules) expect(r).not.toMatch(/--src-type LOCAL/);
  });

  it('changes the nat table only: filter and raw are the same in both modes', () => {
    const on = renderRules(ruleState(true));
    const off = renderRules(ruleState(false));
    for (const f of [4, 6] as const) {
      expect(on[f].filter).toEqual(off[f].filter);
      expect(on[f].raw).toEqual(off[f].raw);
    }
  });

  it('off: no loopback RETURN, DNAT from anywhere, local sources and every hairpin masqueraded', () => {
    const rs = renderRules(ruleState(false));
    expect(rs[4].nat.get('BRNET-DNAT')).toEqual([`${tagOf('web')} -j BRNET-DNAT-aaaaaaaaaaaa`]);
    expect(rs[6].nat.get('BRNET-DNAT')).toEqual([`${tagOf('web')} -j BRNET-DNAT-aaaaaaaaaaaa`]);
    for (const r of rs[4].nat.get('BRNET-DNAT-aaaaaaaaaaaa')!) expect(r).not.toContain('! -i');
    expect(rs[4].nat.get('BRNET-POST-aaaaaaaaaaaa')).toEqual([
      `-s 10.1.0.0/24 ! -o ${BR} ${tagOf('web')} -j MASQUERADE`,
      `-o ${BR} -m addrtype --src-type LOCAL ${tagOf('web')} -j MASQUERADE`,
      `-s 10.1.0.2/32 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 ${tagOf('web:app')} -j MASQUERADE`,
      `-s 10.1.0.2/32 -d 10.1.0.2/32 -p udp -m udp --dport 53 ${tagOf('web:app')} -j MASQUERADE`,
      `-s 10.1.0.2/32 -d 10.1.0.2/32 -p sctp -m sctp --dport 3868 ${tagOf('web:app')} -j MASQUERADE`,
      `-s 10.1.0.3/32 -d 10.1.0.3/32 -p tcp -m tcp --dport 90 ${tagOf('web:v4')} -j MASQUERADE`,
    ]);
  });
});

describe('renderNft with the userland proxy', () => {
  const c = (owner: string) => `comment "brnet@${INSTANCE}:${owner}"`;
  const q = `"${BR}"`;

  it('returns loopback at the head of dnat-all, in each family', () => {
    const rs = renderNft(ruleState(true));
    expect(rs[4].chains.get('dnat-all')).toEqual([`ip daddr 127.0.0.0/8 counter return ${c('userland-proxy')}`, 'jump dnat-aaaaaaaaaaaa']);
    expect(rs[6].chains.get('dnat-all')).toEqual([`ip6 daddr ::1 counter return ${c('userland-proxy')}`, 'jump dnat-aaaaaaaaaaaa']);
  });

  it('DNATs with iifname != BR except SCTP; no local-source or hairpin masquerade but for SCTP', () => {
    const rs = renderNft(ruleState(true));
    expect(rs[4].chains.get('dnat-aaaaaaaaaaaa')).toEqual([
      `iifname != ${q} tcp dport 8080 counter dnat to 10.1.0.2:80 ${c('web:app')}`,
      `iifname != ${q} ip daddr 127.0.0.1 udp dport 5353 counter dnat to 10.1.0.2:53 ${c('web:app')}`,
      `sctp dport 3868 counter dnat to 10.1.0.2:3868 ${c('web:app')}`,
      `iifname != ${q} tcp dport 9000 counter dnat to 10.1.0.3:90 ${c('web:v4')}`,
    ]);
    expect(rs[6].chains.get('dnat-aaaaaaaaaaaa')).toEqual([
      `iifname != ${q} ip6 saddr != fe80::/10 tcp dport 8080 counter dnat to [fd00:1::2]:80 ${c('web:app')}`,
      `ip6 saddr != fe80::/10 sctp dport 3868 counter dnat to [fd00:1::2]:3868 ${c('web:app')}`,
    ]);
    expect(rs[4].chains.get('post-aaaaaaaaaaaa')).toEqual([
      `ip saddr 10.1.0.0/24 oifname != ${q} counter masquerade ${c('web')}`,
      `ip saddr 10.1.0.2 ip daddr 10.1.0.2 sctp dport 3868 counter masquerade ${c('web:app')}`,
    ]);
    for (const f of [4, 6] as const) for (const rules of rs[f].chains.values()) for (const r of rules) expect(r).not.toMatch(/fib saddr type local/);
  });

  it('off: the layout without the proxy', () => {
    const on = renderNft(ruleState(true));
    const rs = renderNft(ruleState(false));
    expect(rs[4].chains.get('dnat-all')).toEqual(['jump dnat-aaaaaaaaaaaa']);
    expect(rs[6].chains.get('dnat-all')).toEqual(['jump dnat-aaaaaaaaaaaa']);
    for (const r of rs[4].chains.get('dnat-aaaaaaaaaaaa')!) expect(r).not.toMatch(/iifname/);
    expect(rs[4].chains.get('post-aaaaaaaaaaaa')).toContain(`oifname ${q} fib saddr type local counter masquerade ${c('web')}`);
    expect(rs[4].chains.get('post-aaaaaaaaaaaa')).toHaveLength(6);
    // only the nat chains differ
    for (const f of [4, 6] as const) {
      const differ = [...rs[f].chains.keys()].filter((k) => JSON.stringify(rs[f].chains.get(k)) !== JSON.stringify(on[f].chains.get(k)));
      expect(differ.sort()).toEqual(['dnat-aaaaaaaaaaaa', 'dnat-all', 'post-aaaaaaaaaaaa']);
      expect(on[f].maps).toEqual(rs[f].maps);
    }
  });
});

describe('networkSysctls', () => {
  const cfg = (proxy: boolean) => ({ ...emptyState().config, userlandProxy: proxy });
  const localnet = (n: Network, proxy: boolean) => networkSysctls(n, cfg(proxy)).filter(([k]) => k.endsWith('/route_localnet'));

  it('route_localnet is 0 with the proxy (loopback is its), 1 without (loopback is DNATed)', () => {
    const n = network('web', 'a');
    expect(localnet(n, true)).toEqual([[`net/ipv4/conf/${BR}/route_localnet`, '0']]);
    expect(localnet(n, false)).toEqual([[`net/ipv4/conf/${BR}/route_localnet`, '1']]);
    expect(localnet(network('inner', 'c', { internal: true }), true)).toEqual([]);
    expect(localnet(network('six', 'e', { ipv4: null, ipv6: v6fc('fd00:1::/64', 'fd00:1::1') }), false)).toEqual([]);
  });
});

// --- the setting -------------------------------------------------------------------------------

/** Only what setConfig reads: the bridges that exist. */
function linksHost(bridges: string[]): Host {
  const view: HostView = { links: { get: () => undefined, has: (n) => bridges.includes(n) }, addrs: [], routes: [] };
  return { links: () => view, hostIpv6: () => true, listeners: () => [], ephemeral: () => ({ start: 40000, end: 40005, reserved: new Set() }) } as unknown as Host;
}

describe('config userland-proxy', () => {
  it('applySetting takes the booleans brnet takes, and refuses others (2)', () => {
    const c = emptyState().config;
    expect(applySetting(c, 'userland-proxy', 'true').userlandProxy).toBe(true);
    expect(applySetting({ ...c, userlandProxy: true }, 'userland-proxy', 'false').userlandProxy).toBe(false);
    expect(applySetting(c, 'userland-proxy', 'T').userlandProxy).toBe(true);
    expect(applySetting(c, 'userland-proxy', '0').userlandProxy).toBe(false);
    expect(c.userlandProxy).toBe(false); // not changed in place
    expect(thrown(() => applySetting(c, 'userland-proxy', 'yes')).exitCode).toBe(2);
    expect(thrown(() => setConfig('userland-proxy', 'maybe')).message).toBe('invalid value "maybe" for userland-proxy: expected true or false (1/0, t/f)');
  });

  it('on: route_localnet 0 for every NAT network whose bridge exists, the rules before; no binding dropped', async () => {
    const s = ruleState(false);
    s.networks.push(network('gone', 'b', { ipv4: v6fc('10.2.0.0/24', '10.2.0.1') }), network('inner', 'c', { ipv4: v6fc('10.3.0.0/24', '10.3.0.1'), internal: true }));
    const p = await setConfig('userland-proxy', 'true').plan(s, linksHost([BR, 'br-cccccccccccc']));
    expect(p.state?.config.userlandProxy).toBe(true);
    expect(p.firewall).toBe('before');
    expect(p.notes).toEqual([]);
    expect(p.state?.networks).toEqual(s.networks);
    const lines = shows(p.steps);
    expect(lines).toContain(`sysctl -w net.ipv4.conf.${BR}.route_localnet=0`);
    expect(lines.filter((l) => l.includes('route_localnet'))).toHaveLength(1); // not for the bridge that is gone, nor the internal one
    expect(s.config.userlandProxy).toBe(false);
  });

  it('on: bindings of endpoints without IPv6 get their :: twin with the same host port; a twin whose port is taken is left out with a warning', async () => {
    const s = ruleState(false);
    const v4 = epOf(s, 'web', 'v4');
    v4.ports = [tcp('0.0.0.0', 9000, 90), { proto: 'udp', hostIp: '0.0.0.0', hostPort: 9053, containerPort: 53 }, tcp('127.0.0.1', 9001, 91), tcp('0.0.0.0', 9002, 92)];
    // someone else's IPv6 socket holds 9002
    const host = { ...linksHost([BR]), listeners: () => [{ proto: 'tcp', ip: '::', port: 9002 }] } as unknown as Host;
    const p = await setConfig('userland-proxy', 'true').plan(s, host);
    expect(text(epOf(p.state!, 'web', 'v4').ports)).toEqual(['tcp 0.0.0.0:9000->90', 'tcp :::9000->90', 'udp 0.0.0.0:9053->53', 'udp :::9053->53', 'tcp 127.0.0.1:9001->91', 'tcp 0.0.0.0:9002->92']);
    expect(p.notes).toEqual(['published 2 binding(s) on [::] for endpoints without IPv6, served by the userland proxy: web/v4 [::]:9000->90/tcp, web/v4 [::]:9053->53/udp']);
    expect(p.warnings).toEqual(['web/v4: not published on [::]:9002:92/tcp: [::]:9002/tcp is in use: a socket on the host listens on [::]:9002/tcp']);
    expect(epOf(p.state!, 'web', 'app').ports).toEqual(epOf(s, 'web', 'app').ports); // it has IPv6 of its own
    expect(v4.ports).toHaveLength(4); // the state read is not changed
    // off again drops exactly the twins
    const back = await setConfig('userland-proxy', 'false').plan(p.state!, host);
    expect(epOf(back.state!, 'web', 'v4').ports).toEqual(v4.ports);
  });

  it('off: drops the bindings only the proxy can serve, says which, and sets route_localnet 1', async () => {
    const s = ruleState(true);
    epOf(s, 'web', 'v4').ports.push(tcp('fd00::9', 9001, 91));
    recordAll(s);
    const p = await setConfig('userland-proxy', 'false').plan(s, linksHost([BR]));
    expect(p.state?.config.userlandProxy).toBe(false);
    expect(text(epOf(p.state!, 'web', 'v4').ports)).toEqual(['tcp 0.0.0.0:9000->90']);
    expect(epOf(p.state!, 'web', 'app').ports).toHaveLength(5); // its :: binding has an IPv6 endpoint address
    expect(p.notes).toEqual([
      'unpublished 2 binding(s) that only the userland proxy can serve (IPv6 host address, endpoint without IPv6): web/v4 [::]:9000->90/tcp, web/v4 [fd00::9]:9001->91/tcp',
    ]);
    expect(shows(p.steps)).toContain(`sysctl -w net.ipv4.conf.${BR}.route_localnet=1`);
    expect(epOf(s, 'web', 'v4').ports).toHaveLength(3); // the state read is not changed
    // the proxies of the dropped bindings are stopped with the others
    const stops = shows(proxySteps(s, p.state!));
    expect(stops).toHaveLength(6);
    expect(stops).toContain('# stop userland proxy 104 [::]:9000/tcp -> 10.1.0.3:90 (web/v4)');
    expect(stops).toContain('# stop userland proxy 105 [fd00::9]:9001/tcp -> 10.1.0.3:91 (web/v4)');
  });

  it('the same value again: no steps, no rules', async () => {
    const s = ruleState(true);
    const p = await setConfig('userland-proxy', 'true').plan(s, linksHost([BR]));
    expect(p.steps).toEqual([]);
    expect(p.firewall).toBeUndefined();
  });
});

// --- state and views --------------------------------------------------------------------------------

describe('the proxy record in the state', () => {
  const file = { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 };
  const message = (v: unknown) => {
    try {
      PortSchema(v);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected a ShapeError');
  };

  it('accepts a pid and a start time, and keeps nothing else of it', () => {
    expect(PortSchema({ ...file, proxy: { pid: 1234, start: '98765' } })).toEqual({ ...file, proxy: { pid: 1234, start: '98765' } });
    expect(PortSchema({ ...file, proxy: { pid: 1, start: '0', cmd: 'x' } })).toEqual({ ...file, proxy: { pid: 1, start: '0' } });
    expect(PortSchema({ ...file, proxy: { pid: 4194304, start: '1' }, rootlesskit: 2 })).toEqual({ ...file, proxy: { pid: 4194304, start: '1' }, rootlesskit: 2 });
    expect('proxy' in PortSchema(file)).toBe(false);
  });

  it('refuses a bad pid or start time, naming proxy in the path', () => {
    expect(message({ ...file, proxy: { pid: 0, start: '1' } })).toBe('proxy.pid: expected a whole number from 1 to 4194304, got 0');
    expect(message({ ...file, proxy: { pid: 4194305, start: '1' } })).toBe('proxy.pid: expected a whole number from 1 to 4194304, got 4194305');
    expect(message({ ...file, proxy: { pid: '12', start: '1' } })).toBe('proxy.pid: expected a whole number from 1 to 4194304, got "12"');
    expect(message({ ...file, proxy: { pid: 1.5, start: '1' } })).toMatch(/^proxy\.pid: /);
    expect(message({ ...file, proxy: { pid: 12, start: 1 } })).toBe('proxy.start: expected a process start time in clock ticks, got number');
    expect(message({ ...file, proxy: { pid: 12, start: '12a' } })).toBe('proxy.start: expected a process start time in clock ticks, got "12a"');
    expect(message({ ...file, proxy: { pid: 12, start: '' } })).toMatch(/^proxy\.start: /);
    expect(message({ ...file, proxy: { pid: 12, start: '1'.repeat(21) } })).toMatch(/^proxy\.start: /);
    expect(message({ ...file, proxy: { pid: 12 } })).toBe('proxy.start: expected a process start time in clock ticks, got undefined');
    expect(message({ ...file, proxy: null })).toBe('proxy: expected an object, got null');
    expect(message({ ...file, proxy: [12, '1'] })).toBe('proxy: expected an object, got an array');
  });

  it('in a whole state file, the path leads to the binding', () => {
    const raw = JSON.parse(JSON.stringify(ruleState(true)));
    raw.networks[0].endpoints[1].ports[1].proxy = { pid: -1, start: '1' };
    expect(() => StateSchema(raw)).toThrow('networks.0.endpoints.1.ports.1.proxy.pid: expected a whole number from 1 to 4194304, got -1');
    raw.networks[0].endpoints[1].ports[1].proxy = { pid: 77, start: '1' };
    expect(StateSchema(raw).networks[0]!.endpoints[1]!.ports[1]!.proxy).toEqual({ pid: 77, start: '1' });
  });
});

describe('views', () => {
  it('a binding shows its proxy pid (not its start time), or null', () => {
    const s = ruleState(true);
    const n = netOf(s, 'web');
    const app = epOf(s, 'web', 'app');
    app.ports[0]!.proxy = { pid: 4321, start: '999' };
    expect(portView(n, app, app.ports[0]!)).toEqual({ network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proxy: { pid: 4321 } });
    expect(portView(n, app, app.ports[1]!).proxy).toBeNull();
    expect(portView(n, app, app.ports[0]!, true)).toMatchObject({ proxy: { pid: 4321 }, stale: true });
    expect(endpointView(n, app).ports.map((p) => p.proxy)).toEqual([{ pid: 4321 }, null, null, null, null]);
    expect(JSON.stringify(portView(n, app, app.ports[0]!))).not.toContain('999');
  });
});

// --- the role, as a process on loopback -----------------------------------------------------------

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
/** src/main.ts bundled as scripts/build.mjs bundles dist/cli.js: the role reached through main's own dispatch. */
let cli = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brnet-proxy-test-'));
  cli = join(dir, 'cli.js');
  await build({
    entryPoints: [join(ROOT, 'src/main.ts')],
    outfile: cli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    define: { __BRNET_VERSION__: '"0.0.0-test"' },
    alias: { 'graceful-fs': 'node:fs' },
    banner: { js: 'import{createRequire as __cr}from"node:module";import{fileURLToPath as __fu}from"node:url";const require=__cr(import.meta.url);const __filename=__fu(import.meta.url);' },
  });
});

/** Every process a test started, killed after it whatever happened. */
const children = new Set<ChildProcess>();
const pids = new Set<number>();
const closers: (() => void)[] = [];

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  pids.clear();
  for (const close of closers.splice(0)) close();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Role {
  child: ChildProcess;
  /** The next line the role writes. */
  line(): Promise<string>;
  exited: Promise<number | null>;
}

function roleIn(runtime: string, args: string[]): Role {
  const child = spawn(runtime, [cli, '__proxy', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    line: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    exited,
  };
}

const gone = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nobody holds now, on 127.0.0.1 (the kernel picks it). */
async function freePort(type: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (type === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** TCP: answers "echo:<all it got>" once the client has ended its side, then ends its own. */
async function tcpEcho(): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (got += d));
    s.on('end', () => s.end(`echo:${got}`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** UDP: answers each datagram with "echo:<it>:<the sender's port>". */
async function udpEcho(): Promise<{ port: number; senders: Set<number> }> {
  const s = dgram.createSocket('udp4');
  const senders = new Set<number>();
  s.on('message', (m, from) => {
    senders.add(from.port);
    s.send(`echo:${m}:${from.port}`, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  closers.push(() => s.close());
  return { port: s.address().port, senders };
}

/** Sends `data`, ends the write side, and reads until the other side ends. */
function halfClose(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => c.end(data));
    let got = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (got += d));
    c.on('end', () => {
      c.destroy();
      resolve(got);
    });
    c.on('error', reject);
  });
}

function udpAsk(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = dgram.createSocket('udp4');
    const t = setTimeout(() => (c.close(), reject(new Error(`no UDP answer to ${msg}`))), 5_000);
    c.on('message', (m) => {
      clearTimeout(t);
      c.close();
      resolve(String(m));
    });
    c.send(msg, port, '127.0.0.1');
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

/**
 * Node, and Bun (what the compiled dist/brnet runs on; the pinned devDependency) where it has
 * a build: their net and dgram modules are not the same code.
 */
const bun = ['node_modules/.bin/bun', `node_modules/@oven/bun-linux-${process.arch === 'arm64' ? 'aarch64' : 'x64'}/bin/bun`].map((p) => join(ROOT, p)).find((p) => existsSync(p));
/** The processes' own instance: never another test's or another helper's proxies. */
const LIVE = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0');
const LIVE_MARK = `brnet@${LIVE}:web:app`;
const runtimes: [string, string][] = [['node', process.execPath], ...(bun ? [['bun', bun] as [string, string]] : [])];

describe.each(runtimes)('the __proxy role on loopback (%s)', (_, runtime) => {
  const role = (args: string[]) => roleIn(runtime, args);

  it('refuses bad arguments: "error …" and exit 2', async () => {
    const r = role([LIVE_MARK, 'sctp', '127.0.0.1', '1', '127.0.0.1', '2']);
    expect(await r.line()).toBe('error invalid proxy arguments');
    expect(await r.exited).toBe(2);
  });

  it('a port held by another socket: "error …EADDRINUSE…" and exit 1', async () => {
    const held = net.createServer();
    await new Promise<void>((res) => held.listen(0, '127.0.0.1', () => res()));
    closers.push(() => held.close());
    const port = (held.address() as net.AddressInfo).port;
    const r = role([LIVE_MARK, 'tcp', '127.0.0.1', String(port), '127.0.0.1', '9']);
    expect(await r.line()).toMatch(/^error .*EADDRINUSE/);
    expect(await r.exited).toBe(1);
  });

  it('says ready once bound; without a commit, the end of stdin makes it exit and frees the port', async () => {
    const port = await freePort();
    const r = role([LIVE_MARK, 'tcp', '127.0.0.1', String(port), '127.0.0.1', String(await tcpEcho())]);
    expect(await r.line()).toBe('ready');
    r.child.stdin!.end();
    expect(await r.exited).toBe(0);
    const again = net.createServer();
    await new Promise<void>((res, rej) => again.once('error', rej).listen(port, '127.0.0.1', () => res()));
    again.close();
  });

  it('after "commit" it runs on without its stdin, ignores SIGHUP, passes a TCP half-close on, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const r = role([LIVE_MARK, 'tcp', '127.0.0.1', String(port), '127.0.0.1', String(await tcpEcho())]);
    expect(await r.line()).toBe('ready');
    r.child.stdin!.end('commit\n');
    r.child.kill('SIGHUP');
    expect(await gone(r.exited, 300)).toBe(false);
    // the client ends its write side first, and still gets the whole answer
    expect(await halfClose(port, 'hello')).toBe('echo:hello');
    expect(await Promise.all([halfClose(port, 'a'), halfClose(port, 'b'.repeat(100_000))])).toEqual(['echo:a', `echo:${'b'.repeat(100_000)}`]);
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('an endpoint that refuses the connection: the client is closed, the proxy stays', async () => {
    const port = await freePort();
    const r = role([LIVE_MARK, 'tcp', '127.0.0.1', String(port), '127.0.0.1', String(await freePort())]);
    expect(await r.line()).toBe('ready');
    r.child.stdin!.write('commit\n');
    const outcome = await new Promise<string>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port });
      c.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      c.on('close', () => resolve('closed'));
      c.resume();
    });
    expect(outcome).toMatch(/^(closed|error ECONNRESET)$/);
    expect(r.child.exitCode).toBeNull();
  });

  it('UDP: each client gets its own answers, through a flow (a source port) of its own', async () => {
    const echo = await udpEcho();
    const port = await freePort('udp');
    const r = role([LIVE_MARK, 'udp', '127.0.0.1', String(port), '127.0.0.1', String(echo.port)]);
    expect(await r.line()).toBe('ready');
    r.child.stdin!.write('commit\n');
    const [a, b] = await Promise.all([udpAsk(port, 'one'), udpAsk(port, 'two')]);
    expect(a).toMatch(/^echo:one:\d+$/);
    expect(b).toMatch(/^echo:two:\d+$/);
    expect(a.split(':')[2]).not.toBe(b.split(':')[2]);
    expect(echo.senders.size).toBe(2);
  });

  it('UDP on a port held by another socket: EADDRINUSE', async () => {
    const held = dgram.createSocket('udp4');
    await new Promise<void>((res) => held.bind(0, '127.0.0.1', () => res()));
    closers.push(() => held.close());
    const r = role([LIVE_MARK, 'udp', '127.0.0.1', String(held.address().port), '127.0.0.1', '9']);
    expect(await r.line()).toMatch(/^error .*EADDRINUSE/);
    expect(await r.exited).toBe(1);
  });
});

describe('startProxy, proxyAlive, findProxies, stopProxy on loopback', () => {
  const instance = LIVE;
  const mark = LIVE_MARK;

  /** startProxy runs `selfCommand()`: here, the bundle instead of vitest's script. */
  async function start(m: string, spec: ProxySpec) {
    const saved = process.argv[1];
    process.argv[1] = cli;
    try {
      const p = startProxy(m, spec);
      process.argv[1] = saved as string;
      const started = await p;
      pids.add(started.id.pid);
      return started;
    } finally {
      process.argv[1] = saved as string;
    }
  }

  it('starts, is known by pid, start time and command line, is found by its mark, and stops', async () => {
    const spec: ProxySpec = { proto: 'tcp', hostIp: '127.0.0.1', hostPort: await freePort(), toIp: '127.0.0.1', toPort: await tcpEcho() };
    const p = await start(mark, spec);
    expect(p.id.start).toMatch(/^\d+$/);
    expect(proxyAlive(p.id, mark, spec)).toBe(true);
    expect(proxyAlive({ ...p.id, start: String(Number(p.id.start) + 1) }, mark, spec)).toBe(false); // another process under that pid
    expect(proxyAlive(p.id, `brnet@${instance}:web:other`, spec)).toBe(false);
    expect(proxyAlive(p.id, mark, { ...spec, toPort: spec.toPort + 1 })).toBe(false);
    expect(proxyAlive({ pid: NO_PID, start: p.id.start }, mark, spec)).toBe(false);
    expect(findProxies(`brnet@${instance}:`)).toEqual([{ pid: p.id.pid, start: p.id.start, mark, spec }]);
    expect(findProxies('brnet@ffffffff:').some((f) => f.pid === p.id.pid)).toBe(false);
    await p.commit();
    expect(await halfClose(spec.hostPort, 'x')).toBe('echo:x');
    expect(proxyAlive(p.id, mark, spec)).toBe(true); // after the commit, on its own
    await stopProxy(p.id);
    expect(alive(p.id.pid)).toBe(false);
    expect(findProxies(`brnet@${instance}:`)).toEqual([]);
    await stopProxy(p.id); // already gone: nothing to do
  });

  it('stopProxy leaves alone a process whose start time is not the recorded one', async () => {
    const spec: ProxySpec = { proto: 'udp', hostIp: '127.0.0.1', hostPort: await freePort('udp'), toIp: '127.0.0.1', toPort: 9 };
    const p = await start(mark, spec);
    await stopProxy({ pid: p.id.pid, start: String(Number(p.id.start) + 1) });
    expect(alive(p.id.pid)).toBe(true);
    await p.kill();
    expect(alive(p.id.pid)).toBe(false);
  });

  it('kill before the commit: gone, and the port free again', async () => {
    const spec: ProxySpec = { proto: 'tcp', hostIp: '127.0.0.1', hostPort: await freePort(), toIp: '127.0.0.1', toPort: 9 };
    const p = await start(mark, spec);
    await p.kill();
    expect(alive(p.id.pid)).toBe(false);
    const again = net.createServer();
    await new Promise<void>((res, rej) => again.once('error', rej).listen(spec.hostPort, '127.0.0.1', () => res()));
    again.close();
  });

  it('a port in use is a conflict (4) naming the port; an address not of this host is an environment error (5)', async () => {
    const held = net.createServer();
    await new Promise<void>((res) => held.listen(0, '127.0.0.1', () => res()));
    closers.push(() => held.close());
    const port = (held.address() as net.AddressInfo).port;
    const e = await start(mark, { proto: 'tcp', hostIp: '127.0.0.1', hostPort: port, toIp: '127.0.0.1', toPort: 9 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BrnetError);
    expect([(e as BrnetError).exitCode, (e as BrnetError).message]).toEqual([4, `cannot start the userland proxy on 127.0.0.1:${port}/tcp: the port is in use`]);
    expect((e as BrnetError).hint).toBe(`see which program holds it: ss -lnp 'sport = :${port}'`);
    if (readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '0') {
      const n = await start(mark, { proto: 'tcp', hostIp: '192.0.2.1', hostPort: 9, toIp: '127.0.0.1', toPort: 9 }).catch((x: unknown) => x);
      expect([(n as BrnetError).exitCode, (n as BrnetError).message]).toEqual([5, 'cannot start the userland proxy on 192.0.2.1:9/tcp: 192.0.2.1 is not an address of this host']);
    }
    expect(findProxies(`brnet@${instance}:`)).toEqual([]);
  });

  it('proxyDrift against real processes: a recorded living proxy is no drift, an unrecorded one is left over', async () => {
    const echo = await tcpEcho();
    const spec: ProxySpec = { proto: 'tcp', hostIp: '127.0.0.1', hostPort: await freePort(), toIp: '127.0.0.1', toPort: echo };
    const p = await start(mark, spec);
    const straySpec = { ...spec, hostPort: await freePort() };
    const stray = await start(`brnet@${instance}:web:gone`, straySpec);
    const s = emptyState();
    s.instance = instance;
    s.config.userlandProxy = true;
    s.networks = [network('web', 'a', { endpoints: [ep('app', '127.0.0.1/8', { ports: [tcp('127.0.0.1', spec.hostPort, echo, { proxy: p.id })] })] })];
    const d = proxyDrift(s);
    expect(d.drift).toEqual([{ kind: 'leftover', what: `userland proxy ${stray.id.pid} ${describeProxy(straySpec)} (brnet@${instance}:web:gone)` }]);
    await d.repair[0]!.do(); // stops the stray one
    expect(alive(stray.id.pid)).toBe(false);
    expect(alive(p.id.pid)).toBe(true);
    expect(proxyDrift(s).drift).toEqual([]);
    // the recorded pid alive, but serving another binding: missing, and left over, stopped first
    const other = structuredClone(s);
    other.networks[0]!.endpoints[0]!.ports[0]!.containerPort = echo + 1;
    const o = proxyDrift(other);
    expect(o.drift.map((x) => x.kind)).toEqual(['missing', 'leftover']);
    expect(o.drift[0]!.what).toMatch(new RegExp(`\\(pid ${p.id.pid} is not running it\\)$`));
    expect(o.repair.map((x) => x.show[0]!.split(' ').slice(0, 5).join(' '))).toEqual([`# stop userland proxy ${p.id.pid}`, '# start userland proxy 127.0.0.1:' + spec.hostPort + '/tcp']);
    await p.kill();
    const after = proxyDrift(s);
    expect(after.drift).toEqual([{ kind: 'missing', what: `userland proxy for web/app ${describeProxy(spec)} (pid ${p.id.pid} is not running it)` }]);
  });
});
