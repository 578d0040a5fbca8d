// `brnet endpoint` against the real kernel, inside private sandboxes, proven with real traffic.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stableMac } from '../../src/net/names.ts';
import { BACKENDS, type OutsideClient, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

let sb: Sandbox;

const readStateText = () => {
  try {
    return readFileSync(join(sb.stateDir, 'state.json'), 'utf8');
  } catch {
    return '';
  }
};

async function add(network: string, name: string, ...opts: string[]): Promise<any> {
  return (await sb.brnetOk(['endpoint', 'add', network, name, ...opts, '--json'])).json();
}

/** `ip -j -d addr show dev NAME`, in namespace `ns` (null = sandbox host); null when missing. */
async function link(name: string, ns: string | null = null): Promise<any | null> {
  const r = await sb.exec(['ip', ...(ns ? ['-n', ns] : []), '-j', '-d', 'addr', 'show', 'dev', name]);
  return r.code === 0 ? (JSON.parse(r.stdout)[0] ?? null) : null;
}
const addrs = (l: any, family?: 'inet' | 'inet6') =>
  (l?.addr_info ?? []).filter((a: any) => !family || a.family === family).map((a: any) => `${a.local}/${a.prefixlen}`);

async function defaultRoutes(ns: string, family: 4 | 6): Promise<any[]> {
  return sb.ipJson(['-n', ns, `-${family}`, 'route', 'show', 'default']);
}
async function netnsList(): Promise<string[]> {
  return (await sb.sh('ls /run/netns')).stdout.split(/\s+/).filter(Boolean).sort();
}
const vethsOnHost = async () => ((await sb.ipJson(['link', 'show', 'type', 'veth'])) as any[]).map((l) => l.ifname).filter((n) => n.startsWith('veth'));

/** Everything a command could change: links, addresses, routes, rules, namespaces, state. */
async function snapshot() {
  return {
    // names, kinds, MACs, MTUs, masters and addresses; not carrier or DAD flags, which the
    // kernel changes on its own
    links: ((await sb.ipJson(['-d', 'addr'])) as any[]).map((l) => [l.ifname, l.linkinfo?.info_kind, l.address, l.mtu, l.master, addrs(l)]),
    routes: (await sb.sh('ip route; ip -6 route')).stdout,
    v4: await sb.iptablesSave(4),
    v6: await sb.iptablesSave(6),
    netns: await netnsList(),
    state: readStateText(),
  };
}

/** The external commands a --debug run traced on stderr. */
const traced = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('+ '));

describeRoot('endpoint add / rm on a NAT network', () => {
  let client: OutsideClient;
  let net: any;

  beforeAll(async () => {
    sb = await Sandbox.create();
    net = (await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.10.0.0/24', '--mtu', '1400', '--json'])).json();
    client = await sb.addOutsideClient();
    expect((await sb.sh('ip netns add a')).code).toBe(0);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('attaches a namespace: veth pair with the MTU, bridge port, hairpin, alias, address, default route', async () => {
    const ep = await add('web', 'app', '--netns', 'a');
    expect(ep).toMatchObject({ name: 'app', network: 'web', netns: 'a', ifname: 'eth0', ipv4: '10.10.0.2/24', ipv6: null, ports: [], defaultRoute: true });
    expect(ep.hostIfname).toMatch(/^veth[0-9a-f]{7}$/);
    // stable, locally administered, unicast
    expect(ep.mac).toBe(stableMac(`endpoint:${net.id}:app`));
    expect(Number.parseInt(ep.mac.slice(0, 2), 16) & 0x03).toBe(0x02);

    const host = await link(ep.hostIfname);
    expect(host).toMatchObject({ mtu: 1400, master: net.bridge });
    expect(host.ifalias).toMatch(/^brnet@[0-9a-f]{8}:web:app$/);
    expect(host.flags).toContain('UP');
    expect(host.linkinfo.info_kind).toBe('veth');
    expect(host.linkinfo.info_slave_data.hairpin).toBe(true);

    const inner = await link('eth0', 'a');
    expect(inner).toMatchObject({ mtu: 1400, address: ep.mac });
    expect(inner.flags).toContain('UP');
    expect(addrs(inner, 'inet')).toEqual(['10.10.0.2/24']);
    // an IPv4-only endpoint does not speak IPv6: not even a link-local address
    expect(addrs(inner, 'inet6')).toEqual([]);
    expect((await link('lo', 'a')).flags).toContain('UP');
    expect(await defaultRoutes('a', 4)).toMatchObject([{ gateway: '10.10.0.1', dev: 'eth0' }]);

    const st = JSON.parse(readStateText()).networks[0].endpoints[0];
    expect(st).toMatchObject({ name: 'app', netnsPath: '/run/netns/a', netnsCreated: false, defaultRoute: true });
  });

  it('creates a missing namespace with --create-netns; siblings ping each other and the gateway', async () => {
    const ep = await add('web', 'db', '--netns', 'b', '--create-netns');
    expect(ep.ipv4).toBe('10.10.0.3/24');
    expect(await netnsList()).toContain('b');
    expect(await sb.ping('a', '10.10.0.3')).toBe(true);
    expect(await sb.ping('b', '10.10.0.2')).toBe(true);
    expect(await sb.ping('a', '10.10.0.1')).toBe(true);
    const srv = await startEcho(sb, 'b', 'tcp', 5432);
    try {
      const r = await probe(sb, 'a', 'tcp', '10.10.0.3', 5432);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, peer: '10.10.0.2' });
    } finally {
      await srv.stop();
    }
  });

  it('reaches an outside client, masqueraded behind the host address', async () => {
    const srv = await startEcho(sb, client.ns, 'tcp', 7000);
    try {
      const r = await probe(sb, 'a', 'tcp', client.ip, 7000);
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true, peer: client.hostIp });
      expect(await sb.ping('a', client.ip)).toBe(true);
    } finally {
      await srv.stop();
    }
  });

  it('is not reachable straight from outside, even with a route to the subnet', async () => {
    expect((await sb.inNs(client.ns, 'ip route add 10.10.0.0/24 via 198.18.0.1')).code).toBe(0);
    const srv = await startEcho(sb, 'a', 'tcp', 7001);
    try {
      const r = await probe(sb, client.ns, 'tcp', '10.10.0.2', 7001, { timeoutMs: 1_000 });
      expect(r.ok).toBe(false);
      // the sandbox host itself does reach it (traffic leaves through the bridge)
      expect((await probe(sb, null, 'tcp', '10.10.0.2', 7001)).ok).toBe(true);
    } finally {
      await srv.stop();
      await sb.inNs(client.ns, 'ip route del 10.10.0.0/24');
    }
  });

  it('honours --ip, --mac and --ifname', async () => {
    const ep = await add('web', 'fixed', '--netns', 'c', '--create-netns', '--ip', '10.10.0.50', '--mac', '02:00:00:AA:BB:CC', '--ifname', 'lan7');
    expect(ep).toMatchObject({ ipv4: '10.10.0.50/24', mac: '02:00:00:aa:bb:cc', ifname: 'lan7' });
    const inner = await link('lan7', 'c');
    expect(inner.address).toBe('02:00:00:aa:bb:cc');
    expect(addrs(inner, 'inet')).toEqual(['10.10.0.50/24']);
    expect(await sb.ping('a', '10.10.0.50')).toBe(true);
  });

  it('names the interface after the lowest free <prefix>N of the namespace', async () => {
    expect((await sb.sh('ip netns add d && ip -n d link add eth0 type veth peer name eth1')).code).toBe(0);
    const ep = await add('web', 'multi', '--netns', 'd');
    expect(ep.ifname).toBe('eth2');
    expect(addrs(await link('eth2', 'd'), 'inet')).toEqual([ep.ipv4]);
  });

  it('takes a namespace as pid:PID or as a path', async () => {
    // a process in a namespace of its own, not named under /run/netns
    const holder = sb.spawnBackground(['unshare', '--net', 'sleep', 'infinity']);
    try {
      const deadline = Date.now() + 5_000;
      while ((await sb.sh(`readlink /proc/${holder.pid}/ns/net`)).stdout === (await sb.sh('readlink /proc/self/ns/net')).stdout) {
        if (Date.now() > deadline) throw new Error('unshare did not switch namespaces');
        await new Promise((r) => setTimeout(r, 20));
      }
      const byPid = await add('web', 'bypid', '--netns', `pid:${holder.pid}`);
      expect(byPid).toMatchObject({ netns: `pid:${holder.pid}`, ifname: 'eth0' });
      const inPid = await sb.exec(['nsenter', `--net=/proc/${holder.pid}/ns/net`, '--', 'ping', '-c1', '-W1', '10.10.0.2']);
      expect(inPid.code, inPid.stderr).toBe(0);
      await sb.brnetOk(['endpoint', 'rm', 'web', 'bypid']);
      expect(await link(byPid.hostIfname)).toBeNull();
    } finally {
      await holder.kill();
    }
    await sb.sh('ip netns add p');
    // the same namespace as `a` by another spelling: one endpoint per namespace and network
    expect((await sb.brnet(['endpoint', 'add', 'web', 'twin', '--netns', '/run/netns/p/../a'])).code).toBe(4);
    const byPath = await add('web', 'bypath', '--netns', '/run/netns/a/../p');
    expect(byPath.netns).toBe('/run/netns/a/../p');
    expect(JSON.parse(readStateText()).networks[0].endpoints.find((e: any) => e.name === 'bypath').netnsPath).toBe('/run/netns/p');
    expect(addrs(await link(byPath.ifname, 'p'), 'inet')).toEqual([byPath.ipv4]);
    await sb.brnetOk(['endpoint', 'rm', 'web', 'bypath']);
    expect(await netnsList()).toContain('p');
  });

  it('lists and inspects endpoints', async () => {
    const table = await sb.brnetOk(['endpoint', 'ls']);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]?.split(/\s+/)).toEqual(['NETWORK', 'ENDPOINT', 'NETNS', 'IFNAME', 'IPV4', 'IPV6', 'MAC', 'PORTS', 'STATUS']);
    expect(lines.find((l) => l.startsWith('web') && l.includes(' app '))?.split(/\s+/).slice(0, 6)).toEqual(['web', 'app', 'a', 'eth0', '10.10.0.2/24', '-']);
    expect((await sb.brnetOk(['endpoint', 'ls', '-q'])).stdout).toBe('app\ndb\nfixed\nmulti\n');
    const all = (await sb.brnetOk(['endpoint', 'ls', 'web', '--json'])).json();
    expect(all.map((e: any) => e.name)).toEqual(['app', 'db', 'fixed', 'multi']);
    const one = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'db'])).json();
    expect(one).toEqual(all[1]);
    expect(Object.keys(one)).toEqual(expect.arrayContaining(['name', 'network', 'netns', 'ifname', 'hostIfname', 'mac', 'ipv4', 'ipv6', 'ports']));
    expect((await sb.brnet(['endpoint', 'inspect', 'web', 'nope'])).code).toBe(3);
    expect((await sb.brnet(['endpoint', 'ls', 'nope'])).code).toBe(3);
  });

  it('--dry-run prints the exact plan and changes nothing', async () => {
    const before = await snapshot();
    const r = await sb.brnetOk(['endpoint', 'add', 'web', 'plan', '--netns', 'e', '--create-netns', '--dry-run']);
    expect(r.stdout).toMatch(/^ip netns add e$/m);
    expect(r.stdout).toMatch(/^ip link add veth[0-9a-f]{7} mtu 1400 type veth peer name eth0 netns \/run\/netns\/e mtu 1400 address [0-9a-f:]{17}$/m);
    expect(r.stdout).toMatch(/^nsenter --net=\/run\/netns\/e -- ip addr add 10\.10\.0\.5\/24 dev eth0$/m);
    expect(r.stdout).toMatch(/^nsenter --net=\/run\/netns\/e -- ip route add default via 10\.10\.0\.1 dev eth0$/m);
    // without published ports no rule changes: direct-access drops are per network
    expect(r.stdout).not.toContain('iptables-restore');
    const withPort = await sb.brnetOk(['endpoint', 'add', 'web', 'plan', '--netns', 'e', '--create-netns', '-p', '8080:80', '--dry-run']);
    expect(withPort.stdout).toContain('iptables-restore --noflush');
    const rm = await sb.brnetOk(['endpoint', 'rm', 'web', 'db', '--dry-run']);
    // the namespace brnet created goes, and takes the veth with it
    expect(rm.stdout).toMatch(/^ip netns del b$/m);
    expect(rm.stdout).toMatch(/^# veth[0-9a-f]{7} goes with its namespace \(else, after \d+ ms: ip link del dev veth[0-9a-f]{7}\)$/m);
    expect(rm.stdout).not.toMatch(/^ip link del/m);
    expect(await snapshot()).toEqual(before);
  });

  it('spawns at most 4 processes for add (existing namespace, IPv4) and 2 for rm', async () => {
    await sb.sh('ip netns add cnt');
    const a = await sb.brnetOk(['endpoint', 'add', 'web', 'count', '--netns', 'cnt', '--debug']);
    expect(traced(a.stderr).length, a.stderr).toBeLessThanOrEqual(4);
    const r = await sb.brnetOk(['endpoint', 'rm', 'web', 'count', '--debug']);
    expect(traced(r.stderr).length, r.stderr).toBeLessThanOrEqual(2);
  });

  it('rm of an endpoint whose created namespace a process still holds: the namespace is unmounted, the veth deleted', async () => {
    const held = (await sb.brnetOk(['endpoint', 'add', 'web', 'held', '--netns', 'heldns', '--create-netns', '--json'])).json();
    const bg = sb.spawnBackground(Sandbox.nsArgv('heldns', ['sleep', '60']));
    try {
      await new Promise((r) => setTimeout(r, 200)); // the sleep is inside the namespace
      const r = await sb.brnetOk(['endpoint', 'rm', 'web', 'held', '--debug']);
      // the wait for the namespace's teardown gave up, and the veth was deleted instead
      expect(r.stderr).toMatch(/\+ ip -force -batch - <<1 lines/);
      expect(await link(held.hostIfname)).toBeNull();
      expect(await netnsList()).not.toContain('heldns');
    } finally {
      await bg.kill();
    }
  });

  it('rm deletes the veth, keeps a namespace brnet did not create, and hands the address out again', async () => {
    const app = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'app'])).json();
    const r = await sb.brnetOk(['endpoint', 'rm', 'web', 'app']);
    expect(r.stdout).toBe('app\n');
    expect(await link(app.hostIfname)).toBeNull();
    expect(await link('eth0', 'a')).toBeNull();
    expect(await netnsList()).toContain('a');
    expect(JSON.parse(readStateText()).networks[0].endpoints.map((e: any) => e.name)).not.toContain('app');
    expect(await sb.iptablesSave(4)).not.toContain(':web:app');
    const again = await add('web', 'app2', '--netns', 'a');
    expect(again.ipv4).toBe('10.10.0.2/24');
    expect(await sb.ping('a', '10.10.0.3')).toBe(true);
  });

  it('keeps the MAC when the same endpoint is added again', async () => {
    const first = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'app2'])).json();
    await sb.brnetOk(['endpoint', 'rm', 'web', 'app2']);
    const again = await add('web', 'app2', '--netns', 'a');
    expect(again.mac).toBe(first.mac);
    expect(again.hostIfname).not.toBe(first.hostIfname);
  });

  it('deletes a namespace it created once no endpoint uses it', async () => {
    const db = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'db'])).json();
    await sb.brnetOk(['endpoint', 'rm', 'web', 'db', 'fixed']);
    expect(await netnsList()).not.toContain('b');
    expect(await netnsList()).not.toContain('c');
    expect(await link(db.hostIfname)).toBeNull();
  });

  it('rm of a missing endpoint: 3, or 0 with --if-exists', async () => {
    const r = await sb.brnet(['endpoint', 'rm', 'web', 'ghost']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^brnet: endpoint ghost not found in network web\n/);
    expect((await sb.brnet(['endpoint', 'rm', 'web', 'ghost', '--if-exists'])).code).toBe(0);
    expect((await sb.brnet(['endpoint', 'rm', 'nonet', 'ghost', '--if-exists'])).code).toBe(0);
    expect((await sb.brnet(['endpoint', 'rm', 'nonet', 'ghost'])).code).toBe(3);
  });
});

for (const backend of BACKENDS) {
describeRoot(`endpoint isolation: ICC off, internal networks, separate networks [${backend}]`, () => {
  let client: OutsideClient;

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    client = await sb.addOutsideClient();
    await sb.brnetOk(['network', 'create', 'quiet', '--subnet', '10.21.0.0/24', '--no-icc']);
    await sb.brnetOk(['network', 'create', 'inner', '--subnet', '10.22.0.0/24', '--internal']);
    await sb.brnetOk(['network', 'create', 'other', '--subnet', '10.23.0.0/24']);
    for (const [n, e] of [['quiet', 'q1'], ['quiet', 'q2'], ['inner', 'i1'], ['inner', 'i2'], ['other', 'o1']] as const) {
      await add(n, e, '--netns', e, '--create-netns');
    }
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('ICC off: siblings cannot reach each other, but reach the gateway and the outside', async () => {
    expect(await sb.ping('q1', '10.21.0.3')).toBe(false);
    const srv = await startEcho(sb, 'q2', 'tcp', 8000);
    const out = await startEcho(sb, client.ns, 'tcp', 8001);
    try {
      expect((await probe(sb, 'q1', 'tcp', '10.21.0.3', 8000, { timeoutMs: 1_000 })).ok).toBe(false);
      expect(await sb.ping('q1', '10.21.0.1')).toBe(true);
      expect(await probe(sb, 'q1', 'tcp', client.ip, 8001)).toMatchObject({ ok: true, peer: client.hostIp });
    } finally {
      await srv.stop();
      await out.stop();
    }
  });

  it('internal: no default route, siblings talk, no path to or from the outside', async () => {
    const i1 = (await sb.brnetOk(['endpoint', 'inspect', 'inner', 'i1'])).json();
    expect(i1.defaultRoute).toBe(false);
    expect(await defaultRoutes('i1', 4)).toEqual([]);
    expect(await sb.ping('i1', '10.22.0.3')).toBe(true);
    expect(await sb.ping('i1', client.ip)).toBe(false);
    const out = await startEcho(sb, client.ns, 'tcp', 8002);
    try {
      // even with a default route of its own, nothing leaves the bridge
      await sb.inNs('i1', 'ip route add default via 10.22.0.1');
      expect((await probe(sb, 'i1', 'tcp', client.ip, 8002, { timeoutMs: 1_000 })).ok).toBe(false);
      await sb.inNs(client.ns, 'ip route add 10.22.0.0/24 via 198.18.0.1');
      expect(await sb.ping(client.ns, '10.22.0.2')).toBe(false);
    } finally {
      await out.stop();
      await sb.inNs('i1', 'ip route del default');
      await sb.inNs(client.ns, 'ip route del 10.22.0.0/24');
    }
  });

  it('two networks: an endpoint of one cannot reach an endpoint of the other', async () => {
    const srv = await startEcho(sb, 'q1', 'tcp', 8003);
    const srv2 = await startEcho(sb, 'o1', 'tcp', 8004);
    try {
      expect(await sb.ping('o1', '10.21.0.2')).toBe(false);
      expect((await probe(sb, 'o1', 'tcp', '10.21.0.2', 8003, { timeoutMs: 1_000 })).ok).toBe(false);
      expect((await probe(sb, 'q1', 'tcp', '10.23.0.2', 8004, { timeoutMs: 1_000 })).ok).toBe(false);
      expect((await probe(sb, 'i1', 'tcp', '10.23.0.2', 8004, { timeoutMs: 1_000 })).ok).toBe(false);
      // while each still reaches its own gateway
      expect(await sb.ping('o1', '10.23.0.1')).toBe(true);
    } finally {
      await srv.stop();
      await srv2.stop();
    }
  });
});

describeRoot(`endpoint traffic with SNAT and the routed gateway mode [${backend}]`, () => {
  let client: OutsideClient;

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    client = await sb.addOutsideClient();
    expect((await sb.sh('ip addr add 198.18.0.5/24 dev up0')).code).toBe(0);
    await sb.brnetOk(['network', 'create', 'snat', '--subnet', '10.31.0.0/24', '--snat-ipv4', '198.18.0.5']);
    await sb.brnetOk(['network', 'create', 'routed', '--subnet', '10.32.0.0/24', '--gateway-mode-ipv4', 'routed']);
    await add('snat', 's1', '--netns', 's1', '--create-netns');
    await add('routed', 'r1', '--netns', 'r1', '--create-netns');
    expect((await sb.inNs(client.ns, 'ip route add 10.32.0.0/24 via 198.18.0.1')).code).toBe(0);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('--snat-ipv4: the outside sees the chosen host address', async () => {
    const srv = await startEcho(sb, client.ns, 'tcp', 9000);
    try {
      expect(await probe(sb, 's1', 'tcp', client.ip, 9000)).toMatchObject({ ok: true, peer: '198.18.0.5' });
    } finally {
      await srv.stop();
    }
  });

  it('routed: the outside pings the endpoint directly and sees its own address', async () => {
    expect(await sb.ping(client.ns, '10.32.0.2')).toBe(true);
    const srv = await startEcho(sb, client.ns, 'tcp', 9001);
    try {
      expect(await probe(sb, 'r1', 'tcp', client.ip, 9001)).toMatchObject({ ok: true, peer: '10.32.0.2' });
    } finally {
      await srv.stop();
    }
  });
});

describeRoot(`dual-stack endpoints [${backend}]`, () => {
  let client: OutsideClient;

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    client = await sb.addOutsideClient('client', { v6: true });
    await sb.brnetOk(['network', 'create', 'ds', '--subnet', '10.40.0.0/24', '--ipv6', '--subnet', 'fd10:40::/64']);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('gives IPv4 and IPv6 addresses and default routes of both families', async () => {
    const d1 = await add('ds', 'd1', '--netns', 'd1', '--create-netns');
    const d2 = await add('ds', 'd2', '--netns', 'd2', '--create-netns', '--ip6', 'fd10:40::99');
    expect(d1).toMatchObject({ ipv4: '10.40.0.2/24', ipv6: 'fd10:40::2/64', defaultRoute: true });
    expect(d2).toMatchObject({ ipv4: '10.40.0.3/24', ipv6: 'fd10:40::99/64' });
    expect(addrs(await link('eth0', 'd1'), 'inet6')).toContain('fd10:40::2/64');
    expect(await defaultRoutes('d1', 6)).toMatchObject([{ gateway: 'fd10:40::1', dev: 'eth0' }]);
    expect(await defaultRoutes('d1', 4)).toMatchObject([{ gateway: '10.40.0.1', dev: 'eth0' }]);
  });

  it('pings over IPv6 between endpoints and to the gateway', async () => {
    expect(await sb.ping('d1', 'fd10:40::99')).toBe(true);
    expect(await sb.ping('d2', 'fd10:40::2')).toBe(true);
    expect(await sb.ping('d1', 'fd10:40::1')).toBe(true);
    expect(await sb.ping('d1', '10.40.0.3')).toBe(true);
  });

  it('reaches an IPv6 outside client, masqueraded behind the host address', async () => {
    const srv = await startEcho(sb, client.ns, 'tcp', 9100, { v6: true });
    try {
      expect(await probe(sb, 'd1', 'tcp', client.ip6, 9100)).toMatchObject({ ok: true, peer: client.hostIp6 });
    } finally {
      await srv.stop();
    }
  });

  it('spawns at most 5 processes for add (existing namespace, two firewall families) and 3 for rm; nftables: one fewer', async () => {
    await sb.sh('ip netns add d3');
    // iptables commits each family on its own; nftables both in one transaction.
    const fewer = backend === 'nftables' ? 1 : 0;
    const a = await sb.brnetOk(['endpoint', 'add', 'ds', 'd3', '--netns', 'd3', '--debug']);
    expect(traced(a.stderr).length, a.stderr).toBeLessThanOrEqual(5 - fewer);
    expect(traced(a.stderr).filter((l) => / nft /.test(l)).length).toBeLessThanOrEqual(1);
    const r = await sb.brnetOk(['endpoint', 'rm', 'ds', 'd3', '--debug']);
    expect(traced(r.stderr).length, r.stderr).toBeLessThanOrEqual(3 - fewer);
  });
});

}

describeRoot('one namespace on several networks', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
    await sb.brnetOk(['network', 'create', 'v4', '--subnet', '10.70.0.0/24']);
    await sb.brnetOk(['network', 'create', 'ds', '--subnet', '10.71.0.0/24', '--ipv6', '--subnet', 'fd10:71::/64']);
    await sb.brnetOk(['network', 'create', 'v4b', '--subnet', '10.72.0.0/24']);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('the first endpoint attached carries the default route of each family', async () => {
    const e1 = await add('v4', 'e1', '--netns', 'shared', '--create-netns');
    const e2 = await add('ds', 'e2', '--netns', 'shared');
    const e3 = await add('v4b', 'e3', '--netns', 'shared');
    expect([e1.ifname, e2.ifname, e3.ifname]).toEqual(['eth0', 'eth1', 'eth2']);
    expect([e1.defaultRoute, e2.defaultRoute, e3.defaultRoute]).toEqual([true, true, false]);
    expect(await defaultRoutes('shared', 4)).toMatchObject([{ gateway: '10.70.0.1', dev: 'eth0' }]);
    expect(await defaultRoutes('shared', 6)).toMatchObject([{ gateway: 'fd10:71::1', dev: 'eth1' }]);
    expect(await sb.ping('shared', '10.72.0.1')).toBe(true);
  });

  it('refuses to attach the namespace to the same network twice', async () => {
    const r = await sb.brnet(['endpoint', 'add', 'v4', 'again', '--netns', 'shared']);
    expect(r.code).toBe(4);
  });

  it('hands the route over when its carrier leaves, and keeps the namespace while it is used', async () => {
    await sb.brnetOk(['endpoint', 'rm', 'v4', 'e1']);
    expect(await netnsList()).toContain('shared');
    expect(await defaultRoutes('shared', 4)).toMatchObject([{ gateway: '10.71.0.1', dev: 'eth1' }]);
    expect(await defaultRoutes('shared', 6)).toMatchObject([{ gateway: 'fd10:71::1', dev: 'eth1' }]);
    // the namespace was created by brnet: the last endpoint to leave deletes it
    await sb.brnetOk(['endpoint', 'rm', 'ds', 'e2']);
    expect(await netnsList()).toContain('shared');
    await sb.brnetOk(['endpoint', 'rm', 'v4b', 'e3']);
    expect(await netnsList()).not.toContain('shared');
  });

  it('--no-default-route adds none, and a default route brnet did not add is a conflict', async () => {
    const e = await add('v4', 'nr', '--netns', 'nr', '--create-netns', '--no-default-route');
    expect(e.defaultRoute).toBe(false);
    expect(await defaultRoutes('nr', 4)).toEqual([]);
    await sb.sh('ip -n nr route add default via 10.70.0.1');
    const r = await sb.brnet(['endpoint', 'add', 'v4b', 'nr2', '--netns', 'nr']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/already has an IPv4 default route \(via 10\.70\.0\.1 dev eth0\) that brnet did not add/);
    expect(r.stderr).toMatch(/^hint: .*--no-default-route/m);
    await sb.brnetOk(['endpoint', 'add', 'v4b', 'nr2', '--netns', 'nr', '--no-default-route']);
  });
});

describeRoot('endpoint rm and network rm --force with vanished namespaces', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
    await sb.brnetOk(['network', 'create', 'f', '--subnet', '10.60.0.0/24']);
    await sb.sh('ip netns add keep');
    await add('f', 'f1', '--netns', 'f1', '--create-netns');
    await add('f', 'f2', '--netns', 'keep');
    await add('f', 'f3', '--netns', 'gone', '--create-netns');
    await add('f', 'f4', '--netns', 'gone2', '--create-netns');
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('endpoint rm succeeds when the namespace already disappeared', async () => {
    const f3 = (await sb.brnetOk(['endpoint', 'inspect', 'f', 'f3'])).json();
    expect((await sb.sh('ip netns del gone')).code).toBe(0);
    expect(await link(f3.hostIfname)).toBeNull(); // the veth died with its peer's namespace
    const r = await sb.brnet(['endpoint', 'rm', 'f', 'f3']);
    expect(r.code, r.stderr).toBe(0);
    expect((await sb.brnetOk(['endpoint', 'ls', 'f', '-q'])).stdout).toBe('f1\nf2\nf4\n');
  });

  it('network rm refuses while endpoints exist; --force removes them, their veths and the namespaces brnet created', async () => {
    await sb.sh('ip netns del gone2');
    expect((await sb.brnet(['network', 'rm', 'f'])).code).toBe(4);
    const r = await sb.brnet(['network', 'rm', '--force', 'f']);
    expect(r.code, r.stderr).toBe(0);
    expect(await vethsOnHost()).toEqual([]);
    expect(await netnsList()).toEqual(['keep']);
    expect(await link('eth0', 'keep')).toBeNull();
    expect(JSON.parse(readStateText()).networks).toEqual([]);
  });
});

describeRoot('endpoint add: bad input and failures change nothing', () => {
  let fakeDir: string;

  beforeAll(async () => {
    sb = await Sandbox.create();
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.50.0.0/24', '--ip-range', '10.50.0.128/25', '--aux-address', 'res=10.50.0.130']);
    await sb.brnetOk(['network', 'create', 'plain', '--subnet', '10.51.0.0/24', '--aux-address', 'r=10.51.0.9']);
    await sb.sh('ip netns add a && ip netns add x && ip netns add gw');
    await sb.sh('ip -n gw link add g0 type veth peer name g1 && ip -n gw addr add 192.0.2.2/24 dev g0 && ip -n gw link set g0 up && ip -n gw link set g1 up && ip -n gw route add default via 192.0.2.1');
    await sb.sh('touch /run/netns/notans');
    const ep = await add('web', 'ep1', '--netns', 'a');
    expect(ep.ipv4).toBe('10.50.0.128/24');
    // An `ip` that fails the configuration batch inside the namespace (an `ip -batch -` run in
    // another network namespace than the sandbox's, and only that), to prove the rollback of a
    // failure half-way.
    fakeDir = mkdtempSync(join(tmpdir(), 'brnet-fake-'));
    const real = (await sb.sh('command -v ip')).stdout.trim();
    const hostNs = (await sb.sh('readlink /proc/self/ns/net')).stdout.trim();
    writeFileSync(
      join(fakeDir, 'ip'),
      `#!/bin/sh\nif [ "$(readlink /proc/self/ns/net)" != "${hostNs}" ]; then case " $* " in *" -batch "*) case " $* " in *" -j "*) ;; *) cat >/dev/null; echo "RTNETLINK answers: injected failure" >&2; echo "Command failed -:1" >&2; exit 1;; esac;; esac; fi\nexec ${real} "$@"\n`,
    );
    chmodSync(join(fakeDir, 'ip'), 0o755);
  });
  afterAll(async () => {
    await sb?.destroy();
    if (fakeDir) rmSync(fakeDir, { recursive: true, force: true });
  });

  const add2 = (net: string, name: string, ...o: string[]) => ['endpoint', 'add', net, name, ...o];
  const cases: [string, number, string[], RegExp][] = [
    ['unknown network', 3, add2('nope', 'e', '--netns', 'x'), /network nope not found/],
    ['duplicate endpoint', 4, add2('web', 'ep1', '--netns', 'x'), /endpoint ep1 already exists in network web/],
    ['--ip of another endpoint', 4, add2('web', 'e', '--netns', 'x', '--ip', '10.50.0.128'), /already in use: used by endpoint ep1/],
    ['--ip of an aux address', 4, add2('web', 'e', '--netns', 'x', '--ip', '10.50.0.130'), /reserved as aux address res/],
    ['--ip of the gateway', 4, add2('plain', 'e', '--netns', 'x', '--ip', '10.51.0.1'), /the gateway of network plain/],
    ['--ip of an aux address outside any range', 4, add2('plain', 'e', '--netns', 'x', '--ip', '10.51.0.9'), /aux address r/],
    ['--ip outside the subnet', 2, add2('web', 'e', '--netns', 'x', '--ip', '10.99.0.5'), /outside the subnet 10\.50\.0\.0\/24/],
    ['--ip outside the ip-range', 2, add2('web', 'e', '--netns', 'x', '--ip', '10.50.0.5'), /outside the ip-range/],
    ['--ip broadcast', 2, add2('web', 'e', '--netns', 'x', '--ip', '10.50.0.255'), /broadcast/],
    ['--ip of the wrong family', 2, add2('web', 'e', '--netns', 'x', '--ip', 'fd00::5'), /an IPv6 address/],
    ['--ip not an address', 2, add2('web', 'e', '--netns', 'x', '--ip', '10.50.0.300'), /not an IPv4 address/],
    ['--ip6 on a network without IPv6', 2, add2('web', 'e', '--netns', 'x', '--ip6', 'fd00::5'), /has no IPv6/],
    ['missing namespace', 3, add2('web', 'e', '--netns', 'missing'), /network namespace missing not found/],
    ['missing namespace path', 3, add2('web', 'e', '--netns', '/run/nowhere/ns'), /not found/],
    ['missing process', 3, add2('web', 'e', '--netns', 'pid:999999999'), /not found/],
    ['not a namespace', 2, add2('web', 'e', '--netns', 'notans'), /not a network namespace/],
    ["brnet's own namespace", 2, add2('web', 'e', '--netns', '/proc/self/ns/net'), /own network namespace/],
    ['bad endpoint name', 2, add2('web', 'bad/name', '--netns', 'x'), /invalid endpoint name/],
    ['bad MAC', 2, add2('web', 'e', '--netns', 'x', '--mac', 'zz:zz'), /invalid MAC/],
    ['multicast MAC', 2, add2('web', 'e', '--netns', 'x', '--mac', '01:00:5e:00:00:01'), /multicast/],
    ['ifname too long', 2, add2('web', 'e', '--netns', 'x', '--ifname', 'averyveryverylongname'), /invalid interface name/],
    ['ifname taken in the namespace', 4, add2('web', 'e', '--netns', 'x', '--ifname', 'lo'), /interface lo already exists in namespace x/],
    ['namespace already on the network', 4, add2('web', 'e', '--netns', 'a'), /already attached to network web as endpoint ep1/],
    ['default route brnet did not add', 4, add2('web', 'e', '--netns', 'gw'), /default route/],
    ['bad namespace name', 2, add2('web', 'e', '--netns', 'a b'), /invalid namespace/],
    ['no --netns', 2, add2('web', 'e'), /--netns/],
    ['bad publish spec', 2, add2('web', 'e', '--netns', 'x', '-p', 'notaport'), /./],
    ['rm of an unknown endpoint', 3, ['endpoint', 'rm', 'web', 'ep1', 'ghost'], /endpoint ghost not found/],
    ['rm on an unknown network', 3, ['endpoint', 'rm', 'nope', 'ep1'], /network nope not found/],
  ];

  it.each(cases)('%s: exit %i', async (_what, code, args, msg) => {
    const before = await snapshot();
    const r = await sb.brnet(args);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stdout).toBe('');
    // one line, optionally followed by one hint line
    expect(r.stderr).toMatch(/^brnet: [^\n]+\n(hint: [^\n]+\n)?$/);
    expect(r.stderr).toMatch(msg);
    expect(await snapshot()).toEqual(before);
  });

  it('a MAC another endpoint of the network has: exit 4', async () => {
    const ep1 = (await sb.brnetOk(['endpoint', 'inspect', 'web', 'ep1'])).json();
    const before = await snapshot();
    const r = await sb.brnet(add2('web', 'e', '--netns', 'x', '--mac', ep1.mac));
    expect(r.code).toBe(4);
    expect(await snapshot()).toEqual(before);
  });

  it('--json errors are one JSON object on stderr', async () => {
    const r = await sb.brnet([...add2('web', 'ep1', '--netns', 'x'), '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr)).toMatchObject({ error: { code: 'CONFLICT', message: expect.stringContaining('ep1'), exitCode: 4 } });
  });

  it('a failure half-way rolls back the veth, the rules and a created namespace; the state is unchanged', async () => {
    const env = { PATH: `${fakeDir}:${process.env.PATH}` };
    const before = await snapshot();
    const r = await sb.brnet(add2('web', 'e', '--netns', 'x', '--debug'), { env });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/injected failure/);
    expect(r.stderr).toMatch(/\+ ip -batch -/); // the veth had been created
    expect(await snapshot()).toEqual(before);
    const c = await sb.brnet(add2('web', 'e', '--netns', 'fresh', '--create-netns'), { env });
    expect(c.code, c.stderr).toBe(1);
    expect(await snapshot()).toEqual(before);
    expect(await netnsList()).not.toContain('fresh');
    // and the same commands work without the injected failure
    await sb.brnetOk(add2('web', 'e', '--netns', 'fresh', '--create-netns'));
    expect(await netnsList()).toContain('fresh');
  });
});
