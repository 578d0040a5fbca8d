// The userland proxy (`config set userland-proxy true`) against the real kernel, in private
// sandboxes, for both firewall backends: real TCP and UDP traffic through the proxies
// (loopback, IPv6 to an IPv4-only endpoint, hairpin), the rule layout of either mode and the
// migration between them, and the proxies' lifecycle as processes (started and stopped by the
// commands, found missing or left over by check, repaired by restore, gone after a crash).
//
// Proxy processes are found by their command line (`… __proxy brnet@<instance>:<net>:<ep> …`)
// and their network namespace: other sandboxes (other test files, other helpers) run proxies
// of their own in the same PID namespace at the same time, and must never be counted or
// signalled here.
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BACKENDS, BRNET_BIN, REPO_ROOT, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

const readState = (sb: Sandbox) => JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8'));
const instanceOf = (sb: Sandbox): string => readState(sb).instance;
const bridgeOf = (sb: Sandbox, net: string): string => readState(sb).networks.find((n: any) => n.name === net).bridge;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The executable brnet runs as its proxies: the compiled one, or Node (bin/brnet's fallback). */
const COMPILED = join(REPO_ROOT, 'dist', 'brnet');

interface ProxyProc {
  pid: number;
  /** The whole command line. */
  argv: string[];
  /** From `__proxy` on: [__proxy, mark, proto, hostIp, hostPort, toIp, toPort]. */
  role: string[];
}

function readOr(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/** Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, …]; null when gone. */
function statFields(pid: number): string[] | null {
  const s = readOr(`/proc/${pid}/stat`);
  return s === null ? null : s.slice(s.lastIndexOf(')') + 2).split(' ');
}

function alive(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== 'Z' && f[0] !== 'X';
}

/**
 * Every living proxy process whose mark starts with `brnet@<instance>:` (this sandbox's state
 * dir, unless `instance` is given) and whose network namespace is the sandbox's.
 */
function proxyProcs(sb: Sandbox, instance = instanceOf(sb)): ProxyProc[] {
  const net = readlinkSync(`/proc/${sb.pid}/ns/net`);
  const out: ProxyProc[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    const raw = readOr(`/proc/${pid}/cmdline`);
    if (!raw || !raw.includes('__proxy')) continue;
    const argv = raw.split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    const i = argv.indexOf('__proxy');
    if (i < 0 || !argv[i + 1]?.startsWith(`brnet@${instance}:`)) continue;
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue;
    }
    if (ns !== net || !alive(pid)) continue;
    out.push({ pid, argv, role: argv.slice(i) });
  }
  return out;
}

/** "proto hostIp hostPort" of each proxy, sorted: what the proxies of this sandbox serve. */
const served = (sb: Sandbox) => proxyProcs(sb).map((p) => `${p.role[2]} ${p.role[3]} ${p.role[4]}`).sort();

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const portLs = async (sb: Sandbox, ...args: string[]) => (await sb.brnetOk(['port', 'ls', ...args, '--json'])).json() as any[];

/** The binding of `port ls --json` with this protocol, host IP and host port. */
async function binding(sb: Sandbox, proto: string, hostIp: string, hostPort: number) {
  const b = (await portLs(sb)).find((p) => p.proto === proto && p.hostIp === hostIp && p.hostPort === hostPort);
  expect(b, `${proto} ${hostIp}:${hostPort} in port ls`).toBeDefined();
  return b;
}

// Tries to bind each "proto host port" in turn in the sandbox host (closing it again at once),
// and prints a JSON object: spec -> "BOUND" or the error code.
const BIND_SCRIPT = String.raw`
const specs = process.argv.slice(1), out = {};
const next = (i) => {
  if (i === specs.length) { console.log(JSON.stringify(out)); process.exit(0); }
  const [proto, host, port] = specs[i].split(' ');
  const v6 = host.includes(':');
  const done = (r, sock) => { out[specs[i]] = r; if (sock) sock.close(); next(i + 1); };
  if (proto === 'tcp') {
    const srv = require('net').createServer();
    srv.on('error', (e) => done(e.code));
    srv.listen({ host, port: Number(port), ipv6Only: v6 }, () => done('BOUND', srv));
  } else {
    const s = require('dgram').createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
    s.on('error', (e) => done(e.code));
    s.bind(Number(port), host, () => done('BOUND', s));
  }
};
next(0);
`;
/** What binding each "proto host port" gives a program in the sandbox host: "BOUND" or the error code. */
async function binds(sb: Sandbox, ...specs: string[]): Promise<Record<string, string>> {
  const r = await sb.exec([process.execPath, '-e', BIND_SCRIPT, ...specs]);
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`bind script failed (code ${r.code}): ${r.stdout}${r.stderr}`);
  }
}
/** Every spec binds: the ports are free. */
const expectFree = async (sb: Sandbox, ...specs: string[]) => expect(await binds(sb, ...specs)).toEqual(Object.fromEntries(specs.map((x) => [x, 'BOUND'])));

// A TCP client that sends its token, then half-closes (no newline: the echo server answers on
// the FIN) and prints what comes back before the other side's FIN.
const HALF_CLOSE_SCRIPT = String.raw`
const [host, port] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port), allowHalfOpen: true });
let buf = '';
s.setEncoding('utf8');
s.on('connect', () => s.end('half-' + process.pid));
s.on('data', (d) => (buf += d));
s.on('end', () => { console.log(buf); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
setTimeout(() => { console.log('timeout ' + buf); process.exit(0); }, 3000);
`;

/** Sends a token from the sandbox host, half-closes, returns the reply ("<token>|<peer>"). */
async function halfClose(sb: Sandbox, host: string, port: number): Promise<string> {
  return (await sb.exec([process.execPath, '-e', HALF_CLOSE_SCRIPT, host, String(port)])).stdout.trim();
}

/**
 * Starts a proxy by hand, as brnet would (same launcher, `__proxy` role and argv), and sends it
 * "commit" at once so that it stays after its stdin closes: a proxy no binding records.
 */
function handProxy(sb: Sandbox, mark: string, spec: string) {
  return sb.spawnBackground(['sh', '-c', `echo commit | exec ${BRNET_BIN} __proxy ${mark} ${spec}`]);
}

type Case = readonly [from: string | null, proto: 'tcp' | 'udp', addr: string, port: number, want: string | boolean];
/**
 * Probes side by side (a client process each; from = a namespace, null for the sandbox host)
 * and compares what came back with `want`: the address the endpoint saw the client as, true
 * for any answer, false for none.
 */
async function expectReach(sb: Sandbox, cases: readonly Case[]): Promise<void> {
  const label = ([from, proto, addr, port]: Case) => `${from ?? 'host'} -> ${addr.includes(':') ? `[${addr}]` : addr}:${port}/${proto}`;
  const got = await Promise.all(cases.map(([from, proto, addr, port, want]) => probe(sb, from, proto, addr, port, { timeoutMs: want === false ? 1_000 : 3_000 })));
  const seen = Object.fromEntries(cases.map((c, i) => [label(c), got[i]!.ok ? (c[4] === true || got[i]!.peer) : false]));
  expect(seen).toEqual(Object.fromEntries(cases.map((c) => [label(c), c[4]])));
}

const expectClean = async (sb: Sandbox) => {
  const r = await sb.brnet(['check']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
};

const routeLocalnet = async (sb: Sandbox, bridge: string) => (await sb.exec(['sysctl', '-n', `net.ipv4.conf.${bridge}.route_localnet`])).stdout.trim();

for (const backend of BACKENDS) {
describeRoot(`userland proxy on an IPv4-only network: traffic, check / restore, lifecycle [${backend}]`, () => {
  let sb: Sandbox;
  let inst: string;
  const APP = '10.70.0.2';
  const GW = '10.70.0.1';
  const HOST4 = '198.18.0.1';
  const HOST6 = 'fd98::1';

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    // The sandbox host gets fd98::1 (and the client fd98::2): the host has IPv6, the network not.
    await sb.addOutsideClient('client', { v6: true });
    await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.70.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '--ip', APP]);
    await sb.brnetOk(['endpoint', 'add', 'web', 'other', '--netns', 'other', '--create-netns', '--ip', '10.70.0.3']);
    await startEcho(sb, 'app', 'tcp', 80);
    await startEcho(sb, 'app', 'udp', 53);
    inst = instanceOf(sb);
    expect(inst).toMatch(/^[0-9a-f]{8}$/);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('publish starts one detached proxy per host IP, port and protocol, IPv4 and :: (6-to-4)', async () => {
    expect(proxyProcs(sb)).toEqual([]);
    const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '8080:80', '5353:53/udp']);
    expect(r.stdout).toBe('0.0.0.0:8080->80/tcp\n[::]:8080->80/tcp\n0.0.0.0:5353->53/udp\n[::]:5353->53/udp\n');
    const ls = await portLs(sb, 'web', 'app');
    expect(ls.map(({ proxy, ...b }) => b)).toEqual([
      { network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 },
      { network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
      { network: 'web', endpoint: 'app', proto: 'udp', hostIp: '0.0.0.0', hostPort: 5353, containerPort: 53 },
      { network: 'web', endpoint: 'app', proto: 'udp', hostIp: '::', hostPort: 5353, containerPort: 53 },
    ]);
    // the table names where the :: bindings go: the endpoint's IPv4 address (6-to-4)
    const table = (await sb.brnetOk(['port', 'ls', 'web', 'app'])).stdout;
    expect(table).toMatch(/web\s+app\s+tcp\s+\[::\]:8080\s+10\.70\.0\.2:80\s+ok/);
    expect(table).toMatch(/web\s+app\s+udp\s+\[::\]:5353\s+10\.70\.0\.2:53\s+ok/);
    const procs = proxyProcs(sb);
    expect(procs).toHaveLength(4);
    for (const b of ls) {
      expect(b.proxy).toEqual({ pid: expect.any(Number) });
      const p = procs.find((x) => x.pid === b.proxy.pid);
      expect(p, `proxy ${b.proxy.pid} of ${b.proto} ${b.hostIp}:${b.hostPort}`).toBeDefined();
      expect(p!.role).toEqual(['__proxy', `brnet@${inst}:web:app`, b.proto, b.hostIp, String(b.hostPort), APP, String(b.containerPort)]);
      // brnet's own executable (bin/brnet runs the compiled one when it is there)
      if (existsSync(COMPILED)) expect(readlinkSync(`/proc/${p!.pid}/exe`)).toBe(COMPILED);
      else expect(p!.argv[1]).toMatch(/bin\/brnet\.js$/);
      // detached: the leader of a session of its own
      expect(statFields(p!.pid)![3]).toBe(String(p!.pid));
    }
    // the proxies hold the ports (and nothing else of brnet's does)
    const ss = (await sb.exec(['ss', '-Hlntu'])).stdout;
    for (const a of ['0.0.0.0:8080', '[::]:8080', '0.0.0.0:5353', '[::]:5353']) expect(ss).toContain(a);
    await expectClean(sb);
    // setting it again changes nothing: the same processes, the same rules
    const rules = await sb.rulesText();
    await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    expect(proxyProcs(sb).map((p) => p.pid).sort()).toEqual(procs.map((p) => p.pid).sort());
    expect(await sb.rulesText()).toBe(rules);
  });

  it('TCP answers on 127.0.0.1, [::1], the host\'s own addresses, and from an outside client over both families', async () => {
    await expectReach(sb, [
      // loopback and IPv6 go through the proxies: the endpoint sees the gateway
      [null, 'tcp', '127.0.0.1', 8080, GW],
      [null, 'tcp', '::1', 8080, GW],
      [null, 'tcp', HOST6, 8080, GW],
      [null, 'tcp', HOST4, 8080, true],
      ['client', 'tcp', HOST4, 8080, '198.18.0.2'], // kernel DNAT keeps the source
      ['client', 'tcp', HOST6, 8080, GW], // 6-to-4 by the :: proxy
    ]);
  });

  it('a TCP client that half-closes still gets the whole answer through the proxy', async () => {
    for (const addr of ['127.0.0.1', '::1']) {
      const reply = await halfClose(sb, addr, 8080);
      expect(reply, addr).toMatch(new RegExp(`^half-\\d+\\|${GW.replace(/\./g, '\\.')}$`));
    }
  });

  it('UDP answers on 127.0.0.1, [::1], over IPv6 from the outside client, and keeps clients apart', async () => {
    await expectReach(sb, [
      [null, 'udp', '127.0.0.1', 5353, GW],
      [null, 'udp', '::1', 5353, GW],
      [null, 'udp', HOST6, 5353, GW],
      ['client', 'udp', HOST6, 5353, GW],
      ['client', 'udp', HOST4, 5353, '198.18.0.2'],
    ]);
    // several clients at once: each gets its own answer (a flow per client address)
    const many = await Promise.all([1, 2, 3].map(() => probe(sb, null, 'udp', '::1', 5353)));
    expect(many.map((m) => m.ok)).toEqual([true, true, true]);
    expect(new Set(many.map((m) => m.reply)).size).toBe(3);
  });

  it('no other program can bind a port a proxy holds', async () => {
    expect(await binds(sb, 'tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353', 'tcp 0.0.0.0 8079')).toEqual({
      'tcp 0.0.0.0 8080': 'EADDRINUSE',
      'tcp :: 8080': 'EADDRINUSE',
      'udp 0.0.0.0 5353': 'EADDRINUSE',
      'udp :: 5353': 'EADDRINUSE',
      'tcp 0.0.0.0 8079': 'BOUND', // the test itself works
    });
  });

  it('an endpoint reaches its own published port through the host (hairpin via the proxy), and so do its siblings', async () => {
    const cases: Case[] = [];
    for (const from of ['app', 'other']) for (const addr of [HOST4, GW]) cases.push([from, 'tcp', addr, 8080, GW], [from, 'udp', addr, 5353, GW]);
    await expectReach(sb, cases);
  });

  it('a killed proxy is missing for check; its path fails, the kernel\'s still works; restore starts it again', async () => {
    const tcp6 = await binding(sb, 'tcp', '::', 8080);
    const udp4 = await binding(sb, 'udp', '0.0.0.0', 5353);
    process.kill(tcp6.proxy.pid, 'SIGKILL');
    process.kill(udp4.proxy.pid, 'SIGKILL');
    await waitFor('the killed proxies to go', () => !alive(tcp6.proxy.pid) && !alive(udp4.proxy.pid));
    // IPv6 is served by the proxy only; loopback UDP too, while the kernel still DNATs IPv4 from outside
    await expectReach(sb, [
      [null, 'tcp', '::1', 8080, false],
      ['client', 'tcp', HOST6, 8080, false],
      [null, 'udp', '127.0.0.1', 5353, false],
      [null, 'tcp', '127.0.0.1', 8080, GW],
      ['client', 'udp', HOST4, 5353, '198.18.0.2'],
    ]);

    const c = await sb.brnet(['check']);
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stdout).toContain(`missing: userland proxy for web/app [::]:8080/tcp -> ${APP}:80 (pid ${tcp6.proxy.pid} is not running it)`);
    expect(c.stdout).toContain(`missing: userland proxy for web/app 0.0.0.0:5353/udp -> ${APP}:53 (pid ${udp4.proxy.pid} is not running it)`);
    expect(c.stdout.trim().split('\n')).toHaveLength(2);
    // port ls's STATUS says which bindings are without their proxy
    const ls = (await sb.brnetOk(['port', 'ls', 'web', 'app'])).stdout.split('\n').filter((l) => l.includes('no proxy'));
    expect(ls.map((l) => l.split(/\s+/).slice(2, 4).join(' '))).toEqual(['tcp [::]:8080', 'udp 0.0.0.0:5353']);

    const r = await sb.brnetOk(['restore']);
    expect(r.stdout + r.stderr).toMatch(/restored missing: userland proxy for web\/app \[::\]:8080\/tcp/);
    const again6 = await binding(sb, 'tcp', '::', 8080);
    const again4 = await binding(sb, 'udp', '0.0.0.0', 5353);
    expect(again6.proxy.pid).not.toBe(tcp6.proxy.pid);
    expect(alive(again6.proxy.pid) && alive(again4.proxy.pid)).toBe(true);
    expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353']);
    await expectReach(sb, [
      [null, 'tcp', '::1', 8080, GW],
      ['client', 'tcp', HOST6, 8080, GW],
      [null, 'udp', '127.0.0.1', 5353, GW],
    ]);
    await expectClean(sb);
  });

  it('a proxy of this instance that no binding records is a leftover restore stops; another instance\'s is left alone', async () => {
    const mine = handProxy(sb, `brnet@${inst}:web:app`, `tcp 0.0.0.0 8090 ${APP} 80`);
    // same shape, another state dir's instance: not ours to report or stop
    const foreign = handProxy(sb, 'brnet@0badf00d:web:app', `tcp 0.0.0.0 8091 ${APP} 80`);
    try {
      await waitFor('the hand-made proxies to listen', async () => Object.values(await binds(sb, 'tcp 0.0.0.0 8090', 'tcp 0.0.0.0 8091')).every((r) => r === 'EADDRINUSE'));
      // they do serve (so "commit" kept them), and they stay past their stdin's end
      await expectReach(sb, [[null, 'tcp', '127.0.0.1', 8090, GW], [null, 'tcp', '127.0.0.1', 8091, GW]]);
      const left = proxyProcs(sb).find((p) => p.role[4] === '8090');
      expect(left).toBeDefined();
      const other = proxyProcs(sb, '0badf00d');
      expect(other).toHaveLength(1);

      const c = await sb.brnet(['check']);
      expect(c.code, c.stdout + c.stderr).toBe(1);
      expect(c.stdout).toBe(`leftover: userland proxy ${left!.pid} 0.0.0.0:8090/tcp -> ${APP}:80 (brnet@${inst}:web:app)\n`);

      await sb.brnetOk(['restore']);
      await waitFor('the leftover to go', () => !alive(left!.pid));
      await expectFree(sb, 'tcp 0.0.0.0 8090');
      expect(alive(other[0]!.pid)).toBe(true);
      expect((await probe(sb, null, 'tcp', '127.0.0.1', 8091)).ok).toBe(true);
      expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353']);
      await expectClean(sb);
    } finally {
      await mine.kill();
      await foreign.kill();
    }
  });

  it('a recorded pid another process has now is missing, and that process is never signalled', async () => {
    // As after a reboot: the state says pid N, start time T; pid N is now some other program.
    const impostor = sb.spawnBackground(['sleep', '120']);
    try {
      await waitFor('the impostor to run sleep', () => readOr(`/proc/${impostor.pid}/cmdline`)?.startsWith('sleep') === true);
      const real = await binding(sb, 'tcp', '0.0.0.0', 8080);
      const file = join(sb.stateDir, 'state.json');
      const state = readState(sb);
      const port = state.networks[0].endpoints.find((e: any) => e.name === 'app').ports.find((p: any) => p.proto === 'tcp' && p.hostIp === '0.0.0.0' && p.hostPort === 8080);
      expect(port.proxy.pid).toBe(real.proxy.pid);
      // the impostor's own pid and start time: only the command line tells it from a proxy
      port.proxy = { pid: impostor.pid, start: statFields(impostor.pid)![19] };
      writeFileSync(file, JSON.stringify(state));

      const c = await sb.brnet(['check']);
      expect(c.code, c.stdout + c.stderr).toBe(1);
      expect(c.stdout).toContain(`missing: userland proxy for web/app 0.0.0.0:8080/tcp -> ${APP}:80 (pid ${impostor.pid} is not running it)`);
      // the real proxy is not recorded any more: a leftover
      expect(c.stdout).toContain(`leftover: userland proxy ${real.proxy.pid} 0.0.0.0:8080/tcp -> ${APP}:80 (brnet@${inst}:web:app)`);
      await sb.brnetOk(['restore']);
      expect(alive(impostor.pid)).toBe(true);
      expect(alive(real.proxy.pid)).toBe(false);
      const now = await binding(sb, 'tcp', '0.0.0.0', 8080);
      expect([impostor.pid, real.proxy.pid]).not.toContain(now.proxy.pid);
      expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353']);
      expect((await probe(sb, null, 'tcp', '127.0.0.1', 8080)).ok).toBe(true);
      await expectClean(sb);
    } finally {
      await impostor.kill();
    }
  });

  it('[::1] can be published with the proxy on, and is served by its proxy alone', async () => {
    const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '[::1]:8181:80', '--json']);
    expect(r.json().ports).toEqual([
      { network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '::1', hostPort: 8181, containerPort: 80, proxy: { pid: expect.any(Number) } },
    ]);
    expect(served(sb)).toContain('tcp ::1 8181');
    await expectReach(sb, [
      [null, 'tcp', '::1', 8181, GW],
      [null, 'tcp', '127.0.0.1', 8181, false],
      ['client', 'tcp', HOST6, 8181, false],
    ]);
    await sb.brnetOk(['port', 'unpublish', 'web', 'app', '[::1]:8181:80']);
    expect(served(sb)).not.toContain('tcp ::1 8181');
    await expectClean(sb);
  });

  it('endpoint add -p and batch start proxies; endpoint rm stops them and frees the ports at once', async () => {
    await sb.brnetOk(['endpoint', 'add', 'web', 'extra', '--netns', 'extra', '--create-netns', '-p', '8282:80']);
    await startEcho(sb, 'extra', 'tcp', 80);
    await startEcho(sb, 'extra', 'udp', 53);
    await sb.brnetOk(['batch', '-'], { input: 'port publish web extra 8283:53/udp\nport publish web extra 8284:80\n' });
    const ls = await portLs(sb, 'web', 'extra');
    expect(ls.map((b) => `${b.proto} ${b.hostIp} ${b.hostPort} ${b.proxy ? 'proxy' : 'none'}`)).toEqual([
      'tcp 0.0.0.0 8282 proxy', 'tcp :: 8282 proxy', 'udp 0.0.0.0 8283 proxy', 'udp :: 8283 proxy', 'tcp 0.0.0.0 8284 proxy', 'tcp :: 8284 proxy',
    ]);
    const pids = ls.map((b) => b.proxy.pid);
    expect(proxyProcs(sb).filter((p) => p.role[1] === `brnet@${inst}:web:extra`).map((p) => p.pid).sort()).toEqual([...pids].sort());
    await expectReach(sb, [
      [null, 'tcp', '::1', 8282, GW],
      [null, 'udp', '127.0.0.1', 8283, GW],
      [null, 'tcp', '127.0.0.1', 8284, GW],
    ]);
    await expectClean(sb);

    await sb.brnetOk(['endpoint', 'rm', 'web', 'extra']);
    // gone, and the ports free, by the time the command has returned
    expect(pids.filter(alive)).toEqual([]);
    await expectFree(sb, 'tcp 0.0.0.0 8282', 'tcp :: 8282', 'udp 0.0.0.0 8283', 'udp :: 8283', 'tcp 0.0.0.0 8284');
    expect(proxyProcs(sb).filter((p) => p.role[1] === `brnet@${inst}:web:extra`)).toEqual([]);
    await expectClean(sb);
  });

  it('a proxy started under Node is `node …/bin/brnet.js __proxy …`, and the compiled brnet knows it as its own', async () => {
    await sb.brnetOk(['port', 'publish', 'web', 'app', '127.0.0.1:8095:80'], { env: { BRNET_RUNTIME: 'node' } });
    const b = await binding(sb, 'tcp', '127.0.0.1', 8095);
    const p = proxyProcs(sb).find((x) => x.pid === b.proxy.pid);
    expect(p).toBeDefined();
    expect(p!.argv.slice(0, 2)).toEqual([expect.stringMatching(/(^|\/)node$/), join(REPO_ROOT, 'bin', 'brnet.js')]);
    expect(p!.role).toEqual(['__proxy', `brnet@${inst}:web:app`, 'tcp', '127.0.0.1', '8095', APP, '80']);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8095)).ok).toBe(true);
    await expectClean(sb);
    await sb.brnetOk(['port', 'unpublish', 'web', 'app', '127.0.0.1:8095:80']);
    expect(alive(b.proxy.pid)).toBe(false);
    await expectClean(sb);
  });

  it('unpublish stops the proxies and frees the port; the rest keep running', async () => {
    const before = (await portLs(sb, 'web', 'app')).filter((b) => b.hostPort === 8080).map((b) => b.proxy.pid);
    expect(before).toHaveLength(2);
    const r = await sb.brnetOk(['port', 'unpublish', 'web', 'app', '8080:80']);
    expect(r.stdout).toBe('0.0.0.0:8080->80/tcp\n[::]:8080->80/tcp\n');
    expect(before.filter(alive)).toEqual([]);
    expect(served(sb)).toEqual(['udp 0.0.0.0 5353', 'udp :: 5353']);
    await expectFree(sb, 'tcp 0.0.0.0 8080', 'tcp :: 8080');
    await expectReach(sb, [
      [null, 'tcp', '127.0.0.1', 8080, false],
      [null, 'tcp', '::1', 8080, false],
      ['client', 'tcp', HOST4, 8080, false],
      ['client', 'tcp', HOST6, 8080, false],
      [null, 'udp', '::1', 5353, GW],
    ]);
    await expectClean(sb);
    await sb.brnetOk(['port', 'publish', 'web', 'app', '8080:80']);
    expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353']);
  });

  it('network rm --force stops the proxies of its endpoints', async () => {
    await sb.brnetOk(['network', 'create', 'tmp', '--subnet', '10.71.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'tmp', 't1', '--netns', 't1', '--create-netns', '-p', '8383:80', '-p', '8384:53/udp']);
    const mark = `brnet@${inst}:tmp:t1`;
    expect(proxyProcs(sb).filter((p) => p.role[1] === mark)).toHaveLength(4);
    const refused = await sb.brnet(['network', 'rm', 'tmp']);
    expect(refused.code, refused.stderr).not.toBe(0); // it has an endpoint: --force is needed
    expect(proxyProcs(sb).filter((p) => p.role[1] === mark)).toHaveLength(4);
    await sb.brnetOk(['network', 'rm', 'tmp', '--force']);
    expect(proxyProcs(sb).filter((p) => p.role[1] === mark)).toEqual([]);
    await expectFree(sb, 'tcp 0.0.0.0 8383', 'tcp :: 8383', 'udp 0.0.0.0 8384', 'udp :: 8384');
    expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353']);
    await expectClean(sb);
  });

  it('proxy off again: no proxy left, the :: bindings go with a note, kernel NAT serves loopback and the outside', async () => {
    const pids = (await portLs(sb)).map((b) => b.proxy?.pid).filter(Boolean);
    expect(pids).toHaveLength(4);
    const r = await sb.brnetOk(['config', 'set', 'userland-proxy', 'false']);
    expect(r.stderr).toMatch(/^unpublished 2 binding\(s\) that only the userland proxy can serve \(IPv6 host address, endpoint without IPv6\): /);
    expect(r.stderr).toContain('web/app [::]:8080->80/tcp');
    expect(r.stderr).toContain('web/app [::]:5353->53/udp');
    expect(pids.filter(alive)).toEqual([]);
    expect(proxyProcs(sb)).toEqual([]);
    expect((await portLs(sb)).map((b) => `${b.proto} ${b.hostIp} ${b.hostPort} ${JSON.stringify(b.proxy)}`)).toEqual([
      'udp 0.0.0.0 5353 null', 'tcp 0.0.0.0 8080 null',
    ]);
    // nothing holds the port now: kernel NAT alone
    await expectFree(sb, 'tcp 0.0.0.0 8080', 'tcp :: 8080');
    const cases: Case[] = [
      [null, 'tcp', '::1', 8080, false],
      ['client', 'tcp', HOST6, 8080, false],
    ];
    for (const [from, addr] of [[null, '127.0.0.1'], [null, HOST4], ['client', HOST4], ['app', HOST4], ['other', GW]] as const) {
      // the client keeps its address (DNAT); the rest come from the host or the bridge, masqueraded
      const peer = from === 'client' ? '198.18.0.2' : true;
      cases.push([from, 'tcp', addr, 8080, peer], [from, 'udp', addr, 5353, peer]);
    }
    await expectReach(sb, cases);
    await expectClean(sb);
  });
});

describeRoot(`userland proxy: rule layout on and off, and the migrations [${backend}]`, () => {
  let sb: Sandbox;
  let inst: string;
  let dualBr: string;
  let v4Br: string;
  /** rulesText with the proxy on, before any migration. */
  let onRules: string;

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.addOutsideClient('client', { v6: true });
    await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    await sb.brnetOk(['network', 'create', 'dual', '--ipv6', '--subnet', '10.72.0.0/24', '--subnet', 'fd72::/64']);
    await sb.brnetOk(['network', 'create', 'v4', '--subnet', '10.73.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'dual', 'd', '--netns', 'd', '--create-netns', '--ip', '10.72.0.2', '--ip6', 'fd72::2']);
    await sb.brnetOk(['endpoint', 'add', 'v4', 'f', '--netns', 'f', '--create-netns', '--ip', '10.73.0.2']);
    await startEcho(sb, 'd', 'tcp', 80, { v6: true });
    await startEcho(sb, 'f', 'tcp', 80);
    await startEcho(sb, 'f', 'udp', 53);
    await sb.brnetOk(['port', 'publish', 'dual', 'd', '8080:80', '9132:132/sctp']);
    await sb.brnetOk(['port', 'publish', 'v4', 'f', '8081:80', '8053:53/udp', '[::1]:8082:80']);
    inst = instanceOf(sb);
    dualBr = bridgeOf(sb, 'dual');
    v4Br = bridgeOf(sb, 'v4');
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  /**
   * rulesText with nftables' chains and maps in name order: a table that restore or a
   * migration rewrote lists them in another order, with the same contents.
   */
  const rulesCanon = async () => {
    const text = await sb.rulesText();
    if (backend === 'iptables') return text;
    return text.replace(/(table [^\n]*) \{\n([\s\S]*?)\n\}/g, (_m, head: string, body: string) => {
      const blocks = body.match(/^\t(?:chain|map|set) [^\n]* \{\n[\s\S]*?^\t\}$/gm) ?? [];
      return `${head} {\n${[...blocks].sort().join('\n')}\n}`;
    });
  };

  /** The nat rules of both families, as lines. */
  async function nat(): Promise<{ v4: string[]; v6: string[] }> {
    if (backend === 'iptables') {
      const save = async (cmd: string) => (await sb.exec([cmd, '-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A '));
      return { v4: await save('iptables-save'), v6: await save('ip6tables-save') };
    }
    const list = async (f: string) => (await sb.sh(`nft list table ${f} brnet`)).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    return { v4: await list('ip'), v6: await list('ip6') };
  }

  /** The rules of the nft chain `name` in `lines` (`nft list table` output). */
  const nftChain = (lines: string[], name: string) => {
    const i = lines.indexOf(`chain ${name} {`);
    expect(i, `chain ${name}`).toBeGreaterThanOrEqual(0);
    return lines.slice(i + 1, lines.indexOf('}', i));
  };

  it('proxy on: loopback RETURN heads the DNAT dispatcher, DNAT skips the own bridge, no hairpin NAT, route_localnet 0', async () => {
    const { v4, v6 } = await nat();
    const mark = `brnet@${inst}:userland-proxy`;
    if (backend === 'iptables') {
      expect(v4.filter((l) => l.startsWith('-A BRNET-DNAT '))[0]).toBe(`-A BRNET-DNAT -d 127.0.0.0/8 -m comment --comment "${mark}" -j RETURN`);
      expect(v6.filter((l) => l.startsWith('-A BRNET-DNAT '))[0]).toBe(`-A BRNET-DNAT -d ::1/128 -m comment --comment "${mark}" -j RETURN`);
      const dnat = (lines: string[]) => lines.filter((l) => l.includes('-j DNAT'));
      for (const l of [...dnat(v4), ...dnat(v6)]) {
        const br = l.includes('10.73.0.2') ? v4Br : dualBr;
        if (l.includes('-p sctp')) expect(l).not.toContain('! -i');
        else expect(l, l).toContain(`! -i ${br} `);
      }
      expect(dnat(v4).filter((l) => / -p (tcp|udp) /.test(l))).toHaveLength(3); // d 8080, f 8081, f 8053
      expect(dnat(v6).filter((l) => / -p (tcp|udp) /.test(l))).toHaveLength(1); // d 8080 (f has no IPv6, [::1] is the proxy's)
      const all = [...v4, ...v6];
      expect(all.filter((l) => l.includes('--src-type LOCAL'))).toEqual([]);
      // per-port hairpin masquerade: SCTP's only
      const hairpin = all.filter((l) => /-s (\S+) -d \1 /.test(l));
      expect(hairpin).toHaveLength(2);
      for (const l of hairpin) expect(l).toMatch(/-p sctp -m sctp --dport 132 .*-j MASQUERADE/);
    } else {
      expect(nftChain(v4, 'dnat-all')[0]).toBe(`ip daddr 127.0.0.0/8 counter packets 0 bytes 0 return comment "${mark}"`);
      expect(nftChain(v6, 'dnat-all')[0]).toBe(`ip6 daddr ::1 counter packets 0 bytes 0 return comment "${mark}"`);
      const dnat = (lines: string[]) => lines.filter((l) => l.includes(' dnat to '));
      for (const l of [...dnat(v4), ...dnat(v6)]) {
        const br = l.includes('10.73.0.2') ? v4Br : dualBr;
        if (l.includes('sctp dport')) expect(l).not.toContain('iifname !=');
        else expect(l, l).toMatch(new RegExp(`^iifname != "${br}" `));
      }
      expect(dnat(v4).filter((l) => /(tcp|udp) dport/.test(l))).toHaveLength(3);
      expect(dnat(v6).filter((l) => /(tcp|udp) dport/.test(l))).toHaveLength(1);
      const all = [...v4, ...v6];
      expect(all.filter((l) => l.includes('fib saddr type local'))).toEqual([]);
      const hairpin = all.filter((l) => /saddr (\S+) ip6? daddr \1 /.test(l));
      expect(hairpin).toHaveLength(2);
      for (const l of hairpin) expect(l).toMatch(/sctp dport 132 counter .*masquerade/);
    }
    expect(await routeLocalnet(sb, dualBr)).toBe('0');
    expect(await routeLocalnet(sb, v4Br)).toBe('0');
    onRules = await rulesCanon();
    await expectClean(sb);
  });

  it('a deleted loopback RETURN is drift: loopback stops working, check names it, restore puts it back', async () => {
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8081)).ok).toBe(true);
    if (backend === 'iptables') {
      const d = await sb.exec(['iptables', '-t', 'nat', '-D', 'BRNET-DNAT', '-d', '127.0.0.0/8', '-m', 'comment', '--comment', `brnet@${inst}:userland-proxy`, '-j', 'RETURN']);
      expect(d.code, d.stderr).toBe(0);
    } else {
      const handle = (await sb.sh("nft -a list chain ip brnet dnat-all | awk '/userland-proxy/ {print $NF}'")).stdout.trim();
      expect(handle).toMatch(/^\d+$/);
      const d = await sb.exec(['nft', 'delete', 'rule', 'ip', 'brnet', 'dnat-all', 'handle', handle]);
      expect(d.code, d.stderr).toBe(0);
    }
    // without it the kernel DNATs 127.0.0.1 into a bridge that routes no loopback (route_localnet 0)
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8081, { timeoutMs: 1_000 })).ok).toBe(false);
    const c = await sb.brnet(['check']);
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^missing: IPv4 .*127\.0\.0\.0\/8.*userland-proxy/)]);
    await sb.brnetOk(['restore']);
    await expectClean(sb);
    expect(await rulesCanon()).toBe(onRules);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8081)).ok).toBe(true);
  });

  it('proxy on: traffic over the dual-stack network, and SCTP has kernel rules and no proxy', async () => {
    const ls = await portLs(sb, 'dual', 'd');
    expect(ls.map((b) => `${b.proto} ${b.hostIp} ${b.hostPort} ${b.proxy ? 'proxy' : 'null'}`)).toEqual([
      'tcp 0.0.0.0 8080 proxy', 'tcp :: 8080 proxy', 'sctp 0.0.0.0 9132 null', 'sctp :: 9132 null',
    ]);
    // the :: proxy of an endpoint with IPv6 goes to its IPv6 address
    const p6 = proxyProcs(sb).find((p) => p.role[3] === '::' && p.role[4] === '8080');
    expect(p6!.role.slice(5)).toEqual(['fd72::2', '80']);
    expect(served(sb).filter((s) => s.startsWith('sctp') || s.includes('9132'))).toEqual([]);
    await expectReach(sb, [
      [null, 'tcp', '::1', 8080, 'fd72::1'], // the :: proxy
      [null, 'tcp', '127.0.0.1', 8080, '10.72.0.1'],
      ['client', 'tcp', 'fd98::1', 8080, 'fd98::2'], // ip6 DNAT: the kernel's
      ['d', 'tcp', 'fd98::1', 8080, 'fd72::1'], // hairpin over IPv6, via the proxy
      [null, 'tcp', '::1', 8082, '10.73.0.1'], // f's [::1], 6-to-4
    ]);
    // SCTP's DNAT is as without the proxy (no `! -i`, checked above) and matches the port
    const rules = await sb.rulesText();
    expect(rules).toMatch(backend === 'iptables' ? /-p sctp -m sctp --dport 9132 .*-j DNAT --to-destination 10\.72\.0\.2:132/ : /sctp dport 9132 counter .*dnat to 10\.72\.0\.2:132/);
    expect(rules).toMatch(backend === 'iptables' ? /-p sctp -m sctp --dport 9132 .*-j DNAT --to-destination \[fd72::2\]:132/ : /sctp dport 9132 counter .*dnat to \[fd72::2\]:132/);
  });

  it('proxy off: one operation stops every proxy, puts the kernel\'s rules back, drops the proxy-only bindings', async () => {
    const pids = (await portLs(sb)).map((b) => b.proxy?.pid).filter(Boolean);
    expect(pids).toHaveLength(7); // d: 0.0.0.0 and :: 8080; f: 8081 and 8053 on 0.0.0.0 and ::, [::1]:8082
    expect(proxyProcs(sb).map((p) => p.pid).sort()).toEqual([...pids].sort());
    const r = await sb.brnetOk(['config', 'set', 'userland-proxy', 'false']);
    expect(r.stderr).toContain('unpublished 3 binding(s) that only the userland proxy can serve (IPv6 host address, endpoint without IPv6): v4/f [::]:8081->80/tcp, v4/f [::]:8053->53/udp, v4/f [::1]:8082->80/tcp');
    expect(pids.filter(alive)).toEqual([]);
    expect(proxyProcs(sb)).toEqual([]);
    expect((await portLs(sb)).map((b) => `${b.network}/${b.endpoint} ${b.proto} ${b.hostIp} ${b.hostPort} ${JSON.stringify(b.proxy)}`)).toEqual([
      'dual/d tcp 0.0.0.0 8080 null', 'dual/d tcp :: 8080 null', 'dual/d sctp 0.0.0.0 9132 null', 'dual/d sctp :: 9132 null',
      'v4/f tcp 0.0.0.0 8081 null', 'v4/f udp 0.0.0.0 8053 null',
    ]);

    const { v4, v6 } = await nat();
    const all = [...v4, ...v6];
    expect((await sb.rulesText()).includes(':userland-proxy')).toBe(false);
    if (backend === 'iptables') {
      expect(all.filter((l) => l.includes('-j DNAT') && l.includes('! -i'))).toEqual([]);
      for (const br of [dualBr, v4Br]) expect(v4).toContain(`-A BRNET-POST-${br.slice(3)} -o ${br} -m addrtype --src-type LOCAL -m comment --comment "brnet@${inst}:${br === v4Br ? 'v4' : 'dual'}" -j MASQUERADE`);
      for (const [cip, proto, port] of [['10.73.0.2', 'tcp', 80], ['10.73.0.2', 'udp', 53], ['10.72.0.2', 'tcp', 80], ['10.72.0.2', 'sctp', 132]] as const) {
        expect(v4.some((l) => l.includes(`-s ${cip}/32 -d ${cip}/32 -p ${proto} -m ${proto} --dport ${port} `) && l.endsWith('-j MASQUERADE')), `${cip} ${proto}/${port}`).toBe(true);
      }
      expect(v6.some((l) => l.includes('-s fd72::2/128 -d fd72::2/128 -p tcp -m tcp --dport 80 '))).toBe(true);
    } else {
      expect(all.filter((l) => l.includes(' dnat to ') && l.includes('iifname !='))).toEqual([]);
      expect(all.filter((l) => l.includes('fib saddr type local counter') && l.includes('masquerade'))).toHaveLength(3); // dual ×2 families, v4
      for (const [cip, proto, port] of [['10.73.0.2', 'tcp', 80], ['10.73.0.2', 'udp', 53], ['10.72.0.2', 'tcp', 80], ['10.72.0.2', 'sctp', 132]] as const) {
        expect(v4.some((l) => l.startsWith(`ip saddr ${cip} ip daddr ${cip} ${proto} dport ${port} counter`)), `${cip} ${proto}/${port}`).toBe(true);
      }
      expect(v6.some((l) => l.startsWith('ip6 saddr fd72::2 ip6 daddr fd72::2 tcp dport 80 counter'))).toBe(true);
    }
    expect(await routeLocalnet(sb, dualBr)).toBe('1');
    expect(await routeLocalnet(sb, v4Br)).toBe('1');
    await expectClean(sb);

    // kernel NAT alone now: loopback through route_localnet, hairpin through masquerade
    await expectReach(sb, [
      [null, 'tcp', '127.0.0.1', 8081, '10.73.0.1'],
      [null, 'udp', '127.0.0.1', 8053, '10.73.0.1'],
      ['client', 'tcp', '198.18.0.1', 8081, '198.18.0.2'],
      ['f', 'tcp', '198.18.0.1', 8081, '10.73.0.1'],
      [null, 'tcp', '127.0.0.1', 8080, '10.72.0.1'],
      ['client', 'tcp', 'fd98::1', 8080, 'fd98::2'],
      ['d', 'tcp', 'fd98::1', 8080, 'fd72::1'],
      [null, 'tcp', '::1', 8082, false],
      [null, 'tcp', '::1', 8081, false],
    ]);
    await expectFree(sb, 'tcp 0.0.0.0 8081');
    // With the proxy off, [::1] cannot be published
    const refused = await sb.brnet(['port', 'publish', 'v4', 'f', '[::1]:8082:80']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/::1/);
  });

  it('proxy on again: proxies for the existing TCP and UDP bindings, their :: twins back, the same rules as before', async () => {
    const r = await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    // the twins off dropped come back with the same host ports; the [::1] binding does not (it had no IPv4 twin)
    expect(r.stderr).toContain('published 2 binding(s) on [::] for endpoints without IPv6, served by the userland proxy: v4/f [::]:8081->80/tcp, v4/f [::]:8053->53/udp');
    const ls = await portLs(sb);
    expect(ls.map((b) => `${b.network}/${b.endpoint} ${b.proto} ${b.hostIp} ${b.hostPort} ${b.proxy ? 'proxy' : 'null'}`)).toEqual([
      'dual/d tcp 0.0.0.0 8080 proxy', 'dual/d tcp :: 8080 proxy', 'dual/d sctp 0.0.0.0 9132 null', 'dual/d sctp :: 9132 null',
      'v4/f tcp 0.0.0.0 8081 proxy', 'v4/f tcp :: 8081 proxy', 'v4/f udp 0.0.0.0 8053 proxy', 'v4/f udp :: 8053 proxy',
    ]);
    expect(proxyProcs(sb).map((p) => p.pid).sort()).toEqual(ls.filter((b) => b.proxy).map((b) => b.proxy.pid).sort());
    // the :: twins leave no kernel rules
    expect(await rulesCanon()).toBe(onRules);
    expect(await routeLocalnet(sb, v4Br)).toBe('0');
    await expectReach(sb, [
      [null, 'tcp', '127.0.0.1', 8081, '10.73.0.1'],
      [null, 'udp', '127.0.0.1', 8053, '10.73.0.1'],
      ['f', 'tcp', '198.18.0.1', 8081, '10.73.0.1'],
      [null, 'tcp', '::1', 8081, '10.73.0.1'],
      [null, 'udp', '::1', 8053, '10.73.0.1'],
      [null, 'tcp', '::1', 8082, false],
      [null, 'tcp', '::1', 8080, 'fd72::1'],
    ]);
    await expectClean(sb);
  });
});

describeRoot(`userland proxy: a crashed call leaves no proxy; reset stops them [${backend}]`, () => {
  let sb: Sandbox;
  let inst: string;

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.74.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '--ip', '10.74.0.2']);
    await startEcho(sb, 'app', 'tcp', 80);
    inst = instanceOf(sb);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('SIGKILL of brnet while it starts 200 proxies: the ones started exit by themselves, nothing is recorded', async () => {
    await sb.brnetOk(['port', 'publish', 'web', 'app', '8080:80']);
    const kept = served(sb);
    expect(kept).toEqual(['tcp 0.0.0.0 8080', 'tcp :: 8080']);
    const inRange = () => proxyProcs(sb).filter((p) => Number(p.role[4]) >= 20000 && Number(p.role[4]) <= 20099);
    const call = sb.spawnBackground([BRNET_BIN, 'port', 'publish', 'web', 'app', '20000-20099:20000-20099'], { env: sb.brnetEnv() });
    try {
      await waitFor('the call to start its first proxies', () => inRange().length >= 3, 30_000);
      // the process we kill is brnet itself (the launcher execs it), still running
      expect(readlinkSync(`/proc/${call.pid}/exe`)).toBe(existsSync(COMPILED) ? COMPILED : process.execPath);
      expect(call.child.exitCode).toBeNull();
      const orphans = inRange().map((p) => p.pid);
      expect(inRange().every((p) => p.role[1] === `brnet@${inst}:web:app`)).toBe(true);
      process.kill(call.pid, 'SIGKILL');
      expect(await call.exited).toBe(137);
      // their stdin closed before "commit": they go within a few seconds, by themselves
      await waitFor('the uncommitted proxies to exit', () => inRange().length === 0, 5_000);
      expect(orphans.filter(alive)).toEqual([]);
    } finally {
      await call.kill();
    }
    expect(served(sb)).toEqual(kept);
    expect((await portLs(sb)).filter((b) => b.hostPort >= 20000 && b.hostPort <= 20099)).toEqual([]);
    // The call died after its rules went in (the firewall comes before the proxies) and before
    // its state was written: check finds those rules, one filter and one nat rule per port, left
    // over, and no proxy either way; restore removes them, as after any kill -9.
    const c = await sb.brnet(['check']);
    expect(c.code, c.stderr).toBe(1);
    const drift = c.stdout.trim().split('\n');
    expect(drift).toHaveLength(200);
    expect(drift.filter((l) => !/^leftover: IPv4 .*rule .*dport 200\d\d /.test(l))).toEqual([]);
    await sb.brnetOk(['restore']);
    await expectClean(sb);
    expect(await sb.rulesText()).not.toMatch(/dport 200\d\d/);
    await expectFree(sb, 'tcp 0.0.0.0 20000');
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8080)).ok).toBe(true);
  });

  it('reset --yes stops every proxy and frees their ports', async () => {
    await sb.brnetOk(['port', 'publish', 'web', 'app', '5353:53/udp']);
    const pids = proxyProcs(sb).map((p) => p.pid);
    expect(pids).toHaveLength(4);
    await sb.brnetOk(['reset', '--yes']);
    expect(pids.filter(alive)).toEqual([]);
    expect(proxyProcs(sb)).toEqual([]);
    await expectFree(sb, 'tcp 0.0.0.0 8080', 'tcp :: 8080', 'udp 0.0.0.0 5353', 'udp :: 5353');
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await sb.brnetOk(['port', 'ls', '--json'])).json()).toEqual([]);
  });
});

describeRoot(`userland proxy: refusals, dry runs and rollbacks leave no proxy [${backend}]`, () => {
  let sb: Sandbox;
  const proxyOn = async () => (await sb.brnetOk(['config', 'show', '--json'])).json()['userland-proxy'];
  /** The state file without the proxies' pids and start times. */
  const unpid = (state: string) => state.replace(/"proxy":\s*\{[^}]*\}/g, '"proxy":{}');
  const snapshot = async () => ({ state: readFileSync(join(sb.stateDir, 'state.json'), 'utf8'), rules: await sb.rulesText() });

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.75.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '--ip', '10.75.0.2']);
    await startEcho(sb, 'app', 'tcp', 80);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('proxy off holds no port; turning it on while a host program holds a published port is refused (4), changing nothing', async () => {
    await sb.brnetOk(['port', 'publish', 'web', 'app', '8080:80', '8081:80']);
    // kernel NAT only: nothing holds the port, so a host program can take it afterwards
    const squatter = await startEcho(sb, null, 'tcp', 8081);
    const before = await snapshot();
    const r = await sb.brnet(['config', 'set', 'userland-proxy', 'true']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/cannot start the userland proxy on 0\.0\.0\.0:8081\/tcp: the port is in use/);
    expect(await proxyOn()).toBe(false);
    expect(proxyProcs(sb)).toEqual([]); // the one it started for 8080 went with the rollback
    expect(await snapshot()).toEqual(before);
    expect(await routeLocalnet(sb, bridgeOf(sb, 'web'))).toBe('1');
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8080)).ok).toBe(true);
    await expectClean(sb);
    await squatter.stop();
  });

  it('--dry-run prints the proxies it would start, and starts none', async () => {
    const before = await snapshot();
    const on = await sb.brnetOk(['config', 'set', 'userland-proxy', 'true', '--dry-run']);
    expect(on.stdout).toContain('# start userland proxy 0.0.0.0:8080/tcp -> 10.75.0.2:80 (web/app)');
    expect(on.stdout).toContain('# start userland proxy 0.0.0.0:8081/tcp -> 10.75.0.2:80 (web/app)');
    // the existing bindings get their :: twins, served by proxies too
    expect(on.stdout).toContain('# start userland proxy [::]:8080/tcp -> 10.75.0.2:80 (web/app)');
    expect(on.stderr).toContain('published 2 binding(s) on [::] for endpoints without IPv6');
    expect(proxyProcs(sb)).toEqual([]);
    expect(await snapshot()).toEqual(before);

    await sb.brnetOk(['config', 'set', 'userland-proxy', 'true']);
    expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp 0.0.0.0 8081', 'tcp :: 8080', 'tcp :: 8081']);
    const mid = await snapshot();
    const pub = await sb.brnetOk(['port', 'publish', 'web', 'app', '8082:80', '--dry-run']);
    expect(pub.stdout).toContain('# start userland proxy 0.0.0.0:8082/tcp -> 10.75.0.2:80 (web/app)');
    expect(pub.stdout).toContain('# start userland proxy [::]:8082/tcp -> 10.75.0.2:80 (web/app)');
    const unpub = await sb.brnetOk(['port', 'unpublish', 'web', 'app', '8080:80', '--dry-run']);
    expect(unpub.stdout).toMatch(/# stop userland proxy \d+ 0\.0\.0\.0:8080\/tcp -> 10\.75\.0\.2:80 \(web\/app\)/);
    expect(served(sb)).toEqual(['tcp 0.0.0.0 8080', 'tcp 0.0.0.0 8081', 'tcp :: 8080', 'tcp :: 8081']);
    expect(await snapshot()).toEqual(mid);
    await expectClean(sb);
  });

  it('publish, batch and endpoint add that fail while starting proxies stop the ones they started', async () => {
    const before = await snapshot();
    const pid = (port: string) => proxyProcs(sb).find((p) => p.role[4] === port)!.pid;
    const pids8080 = pid('8080');
    const pids8081 = pid('8081');
    // A TCP socket bound to 0.0.0.0:8086 that does not listen: invisible to the allocator (it
    // reads listeners), so the call gets as far as starting proxies, and the one for 8086
    // fails after the one for 8085 has started. (perl-base is essential on Debian.)
    const holder = sb.spawnBackground(['perl', '-MSocket', '-e', 'socket(S, PF_INET, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_in(8086, INADDR_ANY)) or die "bind: $!"; $| = 1; print "BOUND\\n"; sleep 60']);
    try {
      await waitFor('the socket holding 8086', () => holder.stdout().includes('BOUND'));
      for (const [args, input] of [
        [['port', 'publish', 'web', 'app', '8085:80', '8086:80'], undefined],
        [['batch', '-'], 'port publish web app 8085:80\nport unpublish web app 8080:80\nport publish web app 8086:81\n'],
        [['endpoint', 'add', 'web', 'b', '--netns', 'b', '--create-netns', '-p', '8085:80', '-p', '8086:80'], undefined],
      ] as const) {
        const r = await sb.brnet([...args], { input });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(4);
        expect(r.stderr).toContain('cannot start the userland proxy on 0.0.0.0:8086/tcp: the port is in use');
        // the proxies from before run (8080's, which the batch stopped, was started again by
        // its rollback, and check finds the state records its new pid), and nothing else
        expect(served(sb), args.join(' ')).toEqual(['tcp 0.0.0.0 8080', 'tcp 0.0.0.0 8081', 'tcp :: 8080', 'tcp :: 8081']);
        await expectFree(sb, 'tcp 0.0.0.0 8085');
        await expectClean(sb);
      }
    } finally {
      await holder.kill();
    }
    // the same state but for 8080's new pid, the same rules
    const now = await snapshot();
    expect(unpid(now.state)).toBe(unpid(before.state));
    expect(now.rules).toBe(before.rules);
    expect(pid('8081')).toBe(pids8081);
    expect(pid('8080')).not.toBe(pids8080);
  });

  it('routed bindings have no proxy; an IPv4-only routed endpoint still gets a 6-to-4 :: binding, as the reference does', async () => {
    await sb.brnetOk(['network', 'create', 'direct', '--ipv6', '--subnet', '10.76.0.0/24', '--subnet', 'fd76::/64', '--gateway-mode-ipv4', 'routed', '--gateway-mode-ipv6', 'routed']);
    await sb.brnetOk(['endpoint', 'add', 'direct', 'r', '--netns', 'r', '--create-netns', '-p', '8080:80']);
    expect((await portLs(sb, 'direct', 'r')).map((b) => `${b.proto} ${b.hostIp} ${b.hostPort} ${JSON.stringify(b.proxy)}`)).toEqual(['tcp 0.0.0.0 0 null', 'tcp :: 0 null']);
    expect(proxyProcs(sb).filter((p) => p.role[1]!.endsWith(':direct:r'))).toEqual([]);
    await expectClean(sb);
    await sb.brnetOk(['network', 'rm', 'direct', '--force']);

    // IPv4 routed, no IPv6 on the endpoint: the IPv6 side is NAT mode, so moby's sortAndNormPBs
    // (libnetwork/drivers/bridge/port_mapping_linux.go) maps [::]:PORT to the IPv4 address
    // through the proxy; brnet does the same.
    await sb.brnetOk(['network', 'create', 'direct4', '--subnet', '10.77.0.0/24', '--gateway-mode-ipv4', 'routed']);
    await sb.brnetOk(['endpoint', 'add', 'direct4', 'r4', '--netns', 'r4', '--create-netns', '--ip', '10.77.0.2', '-p', '8090:80']);
    const ls = await portLs(sb, 'direct4', 'r4');
    expect(ls.map((b) => `${b.proto} ${b.hostIp} ${b.hostPort} ${b.proxy ? 'proxy' : 'null'}`)).toEqual(['tcp 0.0.0.0 0 null', 'tcp :: 8090 proxy']);
    expect(proxyProcs(sb).filter((p) => p.role[1]!.endsWith(':direct4:r4')).map((p) => p.role.slice(2))).toEqual([['tcp', '::', '8090', '10.77.0.2', '80']]);
    await startEcho(sb, 'r4', 'tcp', 80);
    expect((await probe(sb, null, 'tcp', '::1', 8090)).ok).toBe(true);
    await expectClean(sb);
    await sb.brnetOk(['network', 'rm', 'direct4', '--force']);
    expect(proxyProcs(sb).filter((p) => p.role[1]!.endsWith(':direct4:r4'))).toEqual([]);
  });

  it('a host without IPv6 gets no :: binding, and [::1] cannot be served there', async () => {
    const off = await sb.exec(['sysctl', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    expect(off.code, off.stderr).toBe(0);
    try {
      const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '8087:80']);
      expect(r.stdout).toBe('0.0.0.0:8087->80/tcp\n');
      expect(served(sb)).toContain('tcp 0.0.0.0 8087');
      expect(served(sb).some((x) => x.endsWith(' 8087') && x.includes('::'))).toBe(false);
      const before = await snapshot();
      const v6 = await sb.brnet(['port', 'publish', 'web', 'app', '[::1]:8088:80']);
      expect(v6.code, v6.stderr).not.toBe(0);
      expect(v6.stderr).toMatch(/::1/);
      expect(await snapshot()).toEqual(before);
      expect(served(sb).some((x) => x.endsWith(' 8088'))).toBe(false);
      await expectClean(sb);
    } finally {
      await sb.exec(['sysctl', '-w', 'net.ipv6.conf.all.disable_ipv6=0']);
    }
  });
});
}
