import * as fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

/** A live (non-zombie) process with this pid exists. Orphans killed inside the
 * sandbox are reaped by pid 1 whenever it gets to it, so zombies count as gone. */
function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2).charAt(0);
  return state !== 'Z' && state !== 'X';
}

describeRoot('test harness: Sandbox', () => {
  let sb: Sandbox;
  let holderPid = 0;
  const rootNetns = fs.readlinkSync('/proc/self/ns/net');

  beforeAll(async () => {
    sb = await Sandbox.create();
    holderPid = sb.pid;
    // a <-> b over a veth pair, both inside the sandbox
    const r = await sb.sh(`set -e
      ip netns add a
      ip netns add b
      ip link add va type veth peer name vb
      ip link set va netns a
      ip link set vb netns b
      ip -n a addr add 10.200.0.1/24 dev va
      ip -n b addr add 10.200.0.2/24 dev vb
      ip -n a link set va up
      ip -n b link set vb up
      ip -n a link set lo up
      ip -n b link set lo up`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  afterAll(async () => {
    await sb?.destroy();
  });

  it('lives in its own network and mount namespaces', async () => {
    expect(sb.pid).toBeGreaterThan(0);
    expect(fs.readlinkSync(`/proc/${sb.pid}/ns/net`)).not.toBe(rootNetns);
    const inside = await sb.sh('readlink /proc/self/ns/net');
    expect(inside.code).toBe(0);
    expect(inside.stdout.trim()).toBe(fs.readlinkSync(`/proc/${sb.pid}/ns/net`));
    expect(inside.stdout.trim()).not.toBe(rootNetns);
    // Only lo (up), and the two named namespaces live in the sandbox's private /run/netns.
    const links = await sb.ipJson(['link', 'show']);
    expect(links.map((l: { ifname: string }) => l.ifname)).toEqual(['lo']);
    const netns = await sb.sh('ip netns list');
    expect(netns.stdout).toMatch(/^a\b/m);
    expect(netns.stdout).toMatch(/^b\b/m);
    // sysfs is the sandbox's own
    const sys = await sb.sh('ls /sys/class/net');
    expect(sys.stdout.trim().split(/\s+/)).toEqual(['lo']);
    expect(fs.existsSync(sb.stateDir)).toBe(true);
    expect(fs.readdirSync(sb.stateDir)).toEqual([]);
  });

  it('sh reports exit codes, stdin, and timeouts without throwing', async () => {
    expect(await sb.sh('echo out; echo err >&2; exit 3')).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await sb.sh('cat', { input: 'hello' })).stdout).toBe('hello');
    expect((await sb.exec(['printf', '%s|', 'a b', 'c'])).stdout).toBe('a b|c|');
    const t0 = Date.now();
    const slow = await sb.sh('sleep 30', { timeoutMs: 300 });
    expect(slow.code).toBe(124);
    expect(Date.now() - t0).toBeLessThan(5_000);
    // A command leaving something in the background does not block sh().
    const bg = await sb.sh('sleep 30 >/dev/null 2>&1 & echo started', { timeoutMs: 5_000 });
    expect(bg).toMatchObject({ code: 0, stdout: 'started\n' });
  });

  it('pings across the veth pair', async () => {
    expect(await sb.ping('a', '10.200.0.2')).toBe(true);
    expect(await sb.ping('b', '10.200.0.1')).toBe(true);
    // unreachable from the sandbox host: no route
    expect(await sb.ping(null, '10.200.0.2')).toBe(false);
  });

  it('TCP echo/probe works and reports the peer address', async () => {
    const srv = await startEcho(sb, 'b', 'tcp', 8080);
    try {
      const r = await probe(sb, 'a', 'tcp', '10.200.0.2', 8080);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, peer: '10.200.0.1' });
    } finally {
      await srv.stop();
    }
    const after = await probe(sb, 'a', 'tcp', '10.200.0.2', 8080, { timeoutMs: 1_000 });
    expect(after.ok).toBe(false);
  });

  it('UDP echo/probe works and reports the peer address', async () => {
    const srv = await startEcho(sb, 'a', 'udp', 5353);
    try {
      const r = await probe(sb, 'b', 'udp', '10.200.0.1', 5353);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, peer: '10.200.0.2' });
    } finally {
      await srv.stop();
    }
  });

  it('echo servers listen on loopback too, v4 and v6', async () => {
    const v4 = await startEcho(sb, null, 'tcp', 7000);
    const v6 = await startEcho(sb, null, 'udp', 7001, { v6: true });
    const r4 = await probe(sb, null, 'tcp', '127.0.0.1', 7000);
    expect(r4, JSON.stringify(r4)).toMatchObject({ ok: true, peer: '127.0.0.1' });
    const r6 = await probe(sb, null, 'udp', '::1', 7001);
    expect(r6, JSON.stringify(r6)).toMatchObject({ ok: true, peer: '::1' });
    // left running on purpose: destroy() must kill them
  });

  it('a probe to a closed port fails within the timeout', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      const t0 = Date.now();
      const r = await probe(sb, 'a', proto, '10.200.0.2', 9, { timeoutMs: 1_000 });
      expect(r.ok).toBe(false);
      expect(r.peer).toBe('');
      expect(Date.now() - t0).toBeLessThan(4_000);
    }
    // and to an address nobody has
    const t0 = Date.now();
    const r = await probe(sb, 'a', 'tcp', '10.200.0.99', 80, { timeoutMs: 1_000 });
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(4_000);
  });

  it('outside client is reachable from the sandbox host (v4 and v6)', async () => {
    const c = await sb.addOutsideClient('client', { v6: true });
    expect(c).toEqual({ ns: 'client', ip: '198.18.0.2', hostIp: '198.18.0.1', ip6: 'fd98::2', hostIp6: 'fd98::1' });
    expect(await sb.ping(null, '198.18.0.2')).toBe(true);
    expect(await sb.ping(null, 'fd98::2')).toBe(true);
    expect(await sb.ping('client', '198.18.0.1')).toBe(true);
    const addrs = await sb.ipJson(['-n', 'client', 'addr', 'show', 'dev', 'eth0']);
    expect(JSON.stringify(addrs)).toContain('198.18.0.2');
    const srv = await startEcho(sb, null, 'tcp', 8443, { v6: true });
    const r = await probe(sb, 'client', 'tcp', 'fd98::1', 8443);
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true, peer: 'fd98::2' });
    const r4 = await probe(sb, 'client', 'tcp', '198.18.0.1', 8443);
    expect(r4, JSON.stringify(r4)).toMatchObject({ ok: true, peer: '198.18.0.2' });
    await srv.stop();
  });

  it('iptablesSave normalises counters and comments', async () => {
    // A fresh namespace has no tables at all: iptables-save prints nothing
    // until some iptables command has instantiated the table.
    expect(await sb.iptablesSave()).toBe('');
    const rule = 'INPUT -p tcp --dport 1 -m comment --comment "#x" -j ACCEPT';
    const r = await sb.sh(`iptables -A ${rule} && iptables -D ${rule}`);
    expect(r.code, r.stderr).toBe(0);
    const before = await sb.iptablesSave();
    expect(before).toContain(':INPUT ACCEPT [0:0]');
    await sb.sh(`iptables -A ${rule}`);
    await sb.ping(null, '127.0.0.1');
    const withRule = await sb.iptablesSave();
    expect(withRule).toContain('-A INPUT -p tcp -m tcp --dport 1 -m comment --comment "#x" -j ACCEPT');
    await sb.sh(`iptables -D ${rule}`);
    const after = await sb.iptablesSave();
    expect(after).toBe(before);
    expect(after).not.toMatch(/^#/m);
    expect(after).not.toMatch(/\[(?!0:0\])\d+:\d+\]/);
    expect(await sb.iptablesSave(6)).not.toMatch(/^#/m);
  });

  it('destroy() kills the holder and everything started in the sandbox', async () => {
    const leftover = sb.spawnBackground(['ip', 'netns', 'exec', 'b', 'sleep', 'infinity']);
    const stray = await sb.inNs('a', 'sleep 1000 >/dev/null 2>&1 & echo $!');
    const strayPid = Number(stray.stdout.trim());
    expect(strayPid).toBeGreaterThan(0);
    const stateDir = sb.stateDir;
    await sb.destroy();
    await sb.destroy(); // idempotent
    expect(pidAlive(holderPid)).toBe(false);
    expect(pidAlive(leftover.pid)).toBe(false);
    expect(pidAlive(strayPid)).toBe(false);
    expect(fs.existsSync(stateDir)).toBe(false);
    await expect(sb.sh('true')).rejects.toThrow(/destroyed/);
  });
});
