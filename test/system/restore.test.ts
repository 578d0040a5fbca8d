// restore and check: drift after flushes, deleted devices, leftovers and reboots.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

let sb: Sandbox;

describeRoot('check and restore', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.61.0.0/24']);
    await sb.brnetOk(['network', 'create', 'dual', '--ipv6', '--subnet', 'fd61::/64', '--subnet', '10.62.0.0/24', '--no-icc']);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('check is clean right after the commands', async () => {
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect((await sb.brnetOk(['check', '--json'])).json()).toEqual({ clean: true, drift: [], stale: [] });
  });

  it('user rules and foreign chains survive every command unchanged', async () => {
    await sb.sh('iptables -A FORWARD -s 192.0.2.0/24 -j DROP && iptables -N DOCKER-USER && iptables -A DOCKER-USER -j RETURN && iptables -P FORWARD DROP && iptables -t nat -N LIBVIRT_PRT && iptables -t nat -A LIBVIRT_PRT -j RETURN');
    await sb.brnetOk(['network', 'create', 'tmp', '--subnet', '10.63.0.0/24']);
    await sb.brnetOk(['restore']);
    await sb.brnetOk(['network', 'rm', 'tmp']);
    const save = await sb.iptablesSave(4);
    expect(save).toContain(':FORWARD DROP');
    expect(save).toContain('-A FORWARD -s 192.0.2.0/24 -j DROP');
    expect(save).toContain('-A DOCKER-USER -j RETURN');
    expect(save).toContain('-A LIBVIRT_PRT -j RETURN');
    await sb.sh('iptables -P FORWARD ACCEPT');
  });

  it('a flushed firewall is reported, restored, and a second restore changes nothing', async () => {
    // a published port that works before the flush and again after the restore
    await sb.brnetOk(['endpoint', 'add', 'web', 'srv', '--netns', 'srvns', '--create-netns', '-p', '8080:80']);
    const client = await sb.addOutsideClient();
    const echo = await startEcho(sb, 'srvns', 'tcp', 80);
    expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8080)).ok).toBe(true);
    await sb.sh('for t in filter nat raw; do iptables -t $t -F; ip6tables -t $t -F; done');
    expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8080, { timeoutMs: 800 })).ok).toBe(false);
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('missing: IPv4 jump filter/FORWARD -> BRNET-FORWARD');
    expect(r.stdout).toMatch(/missing: IPv6 rule in filter\/BRNET-FORWARD/);
    expect(r.stderr).toMatch(/^brnet: the kernel differs from the state/);
    await sb.brnetOk(['restore']);
    expect((await sb.brnet(['check'])).code).toBe(0);
    expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8080)).ok).toBe(true);
    await echo.stop();
    await sb.brnetOk(['endpoint', 'rm', 'web', 'srv']);
    const v4 = await sb.iptablesSave(4);
    const v6 = await sb.iptablesSave(6);
    const again = await sb.brnetOk(['restore', '--json']);
    expect(again.json().restored).toEqual([]);
    expect(await sb.iptablesSave(4)).toBe(v4);
    expect(await sb.iptablesSave(6)).toBe(v6);
  });

  it('a deleted rule, a duplicated jump, a missing bridge, a removed address and leftovers', async () => {
    const web = (await sb.brnetOk(['network', 'inspect', 'web', '--json'])).json();
    const dual = (await sb.brnetOk(['network', 'inspect', 'dual', '--json'])).json();
    await sb.sh(`iptables -t nat -D BRNET-POST-${web.id.slice(0, 12)} 1`);
    const mark = JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8')).instance;
    await sb.sh(`iptables -I FORWARD -m comment --comment brnet@${mark} -j BRNET-FORWARD`);
    await sb.sh(`ip link del ${web.bridge}`);
    await sb.sh(`ip addr del 10.62.0.1/24 dev ${dual.bridge}`);
    await sb.sh('ip link add br-stray type bridge && ip link set br-stray alias brnet:gone && iptables -N BRNET-IN-000000000000');
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    for (const re of [
      /missing: IPv4 rule in nat\/BRNET-POST-\w+: -s 10\.61\.0\.0\/24/,
      /leftover: IPv4 jump filter\/FORWARD -> BRNET-FORWARD appears 2 times/,
      new RegExp(`missing: bridge ${web.bridge} of network web`),
      /missing: address 10\.62\.0\.1\/24 on bridge/,
      /leftover: device br-stray/,
      /leftover: IPv4 chain filter\/BRNET-IN-000000000000/,
    ]) expect(r.stdout).toMatch(re);
    await sb.brnetOk(['restore']);
    expect((await sb.brnet(['check'])).stdout).toBe('');
    const links = (await sb.ipJson(['link'])).map((l: any) => l.ifname);
    expect(links).toContain(web.bridge);
    expect(links).not.toContain('br-stray');
    expect((await sb.iptablesSave(4)).match(/-A FORWARD -m comment --comment "?brnet@[0-9a-f]{8}"? -j BRNET-FORWARD/g)).toHaveLength(1);
  });

  it('a bridge brought down, and veths detached or moved to another bridge, are reported and repaired', async () => {
    const web = (await sb.brnetOk(['network', 'inspect', 'web', '--json'])).json();
    const a = (await sb.brnetOk(['endpoint', 'add', 'web', 'd1', '--netns', 'd1', '--create-netns', '--json'])).json();
    const b = (await sb.brnetOk(['endpoint', 'add', 'web', 'd2', '--netns', 'd2', '--create-netns', '--json'])).json();
    await sb.sh(`ip link set ${web.bridge} down`);
    await sb.sh(`ip link set ${a.hostIfname} nomaster && ip link add br-other type bridge && ip link set ${b.hostIfname} master br-other`);
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    for (const re of [
      new RegExp(`wrong: bridge ${web.bridge} of network web is down`),
      new RegExp(`wrong: veth ${a.hostIfname} of endpoint web/d1 is not attached to ${web.bridge}`),
      new RegExp(`wrong: veth ${b.hostIfname} of endpoint web/d2 is not attached to ${web.bridge}`),
    ]) expect(r.stdout).toMatch(re);
    await sb.brnetOk(['restore']);
    expect((await sb.brnet(['check'])).stdout).toBe('');
    expect(await sb.ping('d1', '10.61.0.1')).toBe(true);
    expect(await sb.ping('d2', '10.61.0.1')).toBe(true);
    await sb.brnetOk(['endpoint', 'rm', 'web', 'd1', 'd2']);
    await sb.sh('ip link del br-other');
  });

  it('an endpoint whose veth was deleted is attached again, same address and MAC', async () => {
    const ep = (await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'appns', '--create-netns', '--json'])).json();
    await sb.sh(`ip link del ${ep.hostIfname}`);
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`missing: veth ${ep.hostIfname} of endpoint web/app`);
    await sb.brnetOk(['restore']);
    expect((await sb.brnet(['check'])).code).toBe(0);
    const inNs = JSON.parse((await sb.inNs('appns', 'ip -j addr show dev eth0')).stdout)[0];
    expect(inNs.address).toBe(ep.mac);
    expect(inNs.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain(ep.ipv4);
    expect(await sb.ping('appns', '10.61.0.1')).toBe(true);
    expect((await sb.inNs('appns', 'ip route show default')).stdout).toContain('via 10.61.0.1');
  });

  it('after a reboot (fresh sandbox, same state) restore brings every network back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brnet-reboot-'));
    cpSync(join(sb.stateDir, 'state.json'), join(dir, 'state.json'));
    const ours = (t: string) => t.split('\n').filter((l) => /brnet|BRNET/.test(l)).join('\n');
    const before = ours(await sb.iptablesSave(4));
    const app = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'app'])).json();
    const fresh = await Sandbox.create();
    try {
      const env = { BRNET_STATE_DIR: dir };
      const c = await fresh.brnet(['check'], { env });
      expect(c.code).toBe(1);
      await fresh.brnetOk(['restore'], { env });
      expect((await fresh.brnet(['check'], { env })).code).toBe(0);
      expect(ours(await fresh.iptablesSave(4))).toBe(before);
      const addrs = JSON.stringify(await fresh.ipJson(['addr']));
      expect(addrs).toContain('10.61.0.1');
      expect(addrs).toContain('fd61::1');
      // web/app's namespace, which brnet created, did not survive the "reboot": made again,
      // with the endpoint's address and MAC
      expect(c.stdout).toContain('missing: namespace appns of endpoint web/app');
      const again = await fresh.brnet(['check'], { env });
      expect(again.code).toBe(0);
      expect(again.stderr).toBe('');
      const eth0 = JSON.parse((await fresh.inNs('appns', 'ip -j addr show dev eth0')).stdout)[0];
      expect(eth0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain(app.ipv4);
      expect(eth0.address).toBe(app.mac);
      await fresh.brnetOk(['endpoint', 'rm', 'web', 'app'], { env });
      expect((await fresh.sh('ip netns list')).stdout).not.toContain('appns');
      expect((await fresh.brnetOk(['endpoint', 'ls', '-q'], { env })).stdout).toBe('');
    } finally {
      await fresh.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
