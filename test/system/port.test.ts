// `brnet port` against the real kernel, inside private sandboxes: real TCP and UDP traffic
// from an outside client, the sandbox host, sibling endpoints and the endpoint itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BACKENDS, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

const readState = (sb: Sandbox) => readFileSync(join(sb.stateDir, 'state.json'), 'utf8');

async function addEndpoint(sb: Sandbox, net: string, ep: string, opts: { ip?: string; ip6?: string } = {}) {
  const args = ['endpoint', 'add', net, ep, '--netns', ep, '--create-netns'];
  if (opts.ip) args.push('--ip', opts.ip);
  if (opts.ip6) args.push('--ip6', opts.ip6);
  await sb.brnetOk(args);
}

/** Everything a refused command must leave alone. */
async function snapshot(sb: Sandbox) {
  return { state: readState(sb), rules: await sb.rulesText() };
}

/** The conntrack entries (as text) whose original destination port is `port`. */
async function flowsTo(sb: Sandbox, proto: string, port: number): Promise<string> {
  const r = await sb.exec(['conntrack', '-L', '-p', proto, '--orig-port-dst', String(port)]);
  return r.stdout.trim();
}

/** Puts a flow from the outside client into the conntrack table, as if it had sent packets. */
async function insertFlow(sb: Sandbox, proto: string, dst: string, port: number): Promise<void> {
  const r = await sb.exec(['conntrack', '-I', '-p', proto, '-s', '198.18.0.2', '-d', dst, '--sport', '40000', '--dport', String(port), '-t', '120', ...(proto === 'tcp' ? ['--state', 'ESTABLISHED'] : [])]);
  expect(r.code, r.stderr).toBe(0);
}

for (const backend of BACKENDS) {
describeRoot(`port publish / unpublish / ls (IPv4) [${backend}]`, () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.addOutsideClient('client');
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.88.0.0/24']);
    await addEndpoint(sb, 'web', 'app', { ip: '10.88.0.2' });
    await addEndpoint(sb, 'web', 'other', { ip: '10.88.0.3' });
    await sb.brnetOk(['network', 'create', 'inner', '--internal', '--subnet', '10.87.0.0/24']);
    await addEndpoint(sb, 'inner', 'hidden', { ip: '10.87.0.2' });
    for (const p of [80, 81, 90, 91, 92, 93]) await startEcho(sb, 'app', 'tcp', p);
    await startEcho(sb, 'app', 'udp', 53);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('publishes TCP and UDP ports and prints one line per binding', async () => {
    const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '8080:80', '8053:53/UDP']);
    expect(r.stdout).toBe('0.0.0.0:8080->80/tcp\n0.0.0.0:8053->53/udp\n');
    const ls = (await sb.brnetOk(['port', 'ls', 'web', 'app', '--json'])).json();
    expect(ls).toEqual([
      { network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proxy: null },
      { network: 'web', endpoint: 'app', proto: 'udp', hostIp: '0.0.0.0', hostPort: 8053, containerPort: 53, proxy: null },
    ]);
  });

  it('is reachable from an outside client, which the endpoint sees by its real address', async () => {
    const t = await probe(sb, 'client', 'tcp', '198.18.0.1', 8080);
    expect(t, JSON.stringify(t)).toMatchObject({ ok: true, peer: '198.18.0.2' });
    const u = await probe(sb, 'client', 'udp', '198.18.0.1', 8053);
    expect(u, JSON.stringify(u)).toMatchObject({ ok: true, peer: '198.18.0.2' });
  });

  it('is reachable from the host itself, on 127.0.0.1 and on its own address', async () => {
    for (const addr of ['127.0.0.1', '198.18.0.1']) {
      const t = await probe(sb, null, 'tcp', addr, 8080);
      expect(t, `${addr} ${JSON.stringify(t)}`).toMatchObject({ ok: true });
      const u = await probe(sb, null, 'udp', addr, 8053);
      expect(u, `${addr} ${JSON.stringify(u)}`).toMatchObject({ ok: true });
    }
  });

  it('is reachable from another endpoint of the network, via the gateway and the host address', async () => {
    for (const addr of ['10.88.0.1', '198.18.0.1']) {
      const t = await probe(sb, 'other', 'tcp', addr, 8080);
      expect(t, `${addr} ${JSON.stringify(t)}`).toMatchObject({ ok: true });
      const u = await probe(sb, 'other', 'udp', addr, 8053);
      expect(u, `${addr} ${JSON.stringify(u)}`).toMatchObject({ ok: true });
    }
  });

  it('lets the endpoint reach its own published port (hairpin)', async () => {
    const t = await probe(sb, 'app', 'tcp', '198.18.0.1', 8080);
    expect(t, JSON.stringify(t)).toMatchObject({ ok: true });
    const u = await probe(sb, 'app', 'udp', '198.18.0.1', 8053);
    expect(u, JSON.stringify(u)).toMatchObject({ ok: true });
  });

  it('leaves unpublished endpoint ports unreachable from outside', async () => {
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 81, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'tcp', '10.88.0.2', 81, { timeoutMs: 1_000 })).ok).toBe(false);
  });

  it('keeps a port published on 127.0.0.1 to the host', async () => {
    const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '127.0.0.1:9090:81', '--json']);
    expect(r.json()).toEqual({
      network: 'web',
      endpoint: 'app',
      ports: [{ network: 'web', endpoint: 'app', proto: 'tcp', hostIp: '127.0.0.1', hostPort: 9090, containerPort: 81, proxy: null }],
    });
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 9090)).ok).toBe(true);
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 9090, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'other', 'tcp', '10.88.0.1', 9090, { timeoutMs: 1_000 })).ok).toBe(false);
  });

  it('maps ranges one to one, takes the first free port of a host range, and allocates ephemeral ports', async () => {
    // A listener on the host holds 7200; reserved ports are skipped by automatic allocation.
    await startEcho(sb, null, 'tcp', 7200);
    const range = (await sb.sh('cat /proc/sys/net/ipv4/ip_local_port_range')).stdout.trim().split(/\s+/).map(Number);
    const first = range[0]!;
    const w = await sb.sh(`echo ${first}-${first + 2} > /proc/sys/net/ipv4/ip_local_reserved_ports`);
    expect(w.code, w.stderr).toBe(0);
    const r = await sb.brnetOk(['port', 'publish', 'web', 'app', '7100-7101:90-91', '7200-7210:92', '93', '--json']);
    const ports = r.json().ports.map((p: any) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`);
    expect(ports).toEqual([
      '0.0.0.0:7100->90/tcp',
      '0.0.0.0:7101->91/tcp',
      '0.0.0.0:7201->92/tcp',
      `0.0.0.0:${first + 3}->93/tcp`,
    ]);
    const ls = (await sb.brnetOk(['port', 'ls', 'web', 'app', '-q'])).stdout.trim().split('\n');
    expect(ls).toEqual(expect.arrayContaining(['0.0.0.0:7100', '0.0.0.0:7101', '0.0.0.0:7201', `0.0.0.0:${first + 3}`]));
    for (const [port, expected] of [[7100, true], [7101, true], [7201, true], [first + 3, true]] as const) {
      const t = await probe(sb, 'client', 'tcp', '198.18.0.1', port);
      expect(t.ok, `${port} ${JSON.stringify(t)}`).toBe(expected);
    }
    const table = (await sb.brnetOk(['port', 'ls'])).stdout;
    expect(table).toMatch(/^NETWORK\s+ENDPOINT\s+PROTO\s+HOST\s+CONTAINER/);
    expect(table).toMatch(/web\s+app\s+tcp\s+0\.0\.0\.0:7201\s+10\.88\.0\.2:92/);
  });

  it('refuses a port brnet already published, changing nothing', async () => {
    const before = await snapshot(sb);
    for (const args of [
      ['web', 'app', '8080:80'],
      ['web', 'other', '8080:81'],
      ['web', 'other', '192.0.2.7:8080:81'], // 0.0.0.0:8080 covers every IPv4 address
      ['web', 'other', '9090:81'], // 127.0.0.1:9090 is taken, so 0.0.0.0:9090 cannot be
      ['web', 'other', '9100:80', '9100:81'], // two in one call
    ]) {
      const r = await sb.brnet(['port', 'publish', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(4);
      expect(r.stderr).toMatch(/^brnet: cannot publish/);
      expect(r.stdout).toBe('');
    }
    expect(await snapshot(sb)).toEqual(before);
  });

  it('refuses a port a socket listens on in the host', async () => {
    await startEcho(sb, null, 'tcp', 8181);
    await startEcho(sb, null, 'udp', 8182);
    const before = await snapshot(sb);
    const t = await sb.brnet(['port', 'publish', 'web', 'other', '8181:80']);
    expect(t.code, t.stderr).toBe(4);
    expect(t.stderr).toContain('0.0.0.0:8181/tcp');
    const u = await sb.brnet(['port', 'publish', 'web', 'other', '127.0.0.1:8182:53/udp']);
    expect(u.code, u.stderr).toBe(4);
    expect(await snapshot(sb)).toEqual(before);
    // the other protocol on the same number is free
    await sb.brnetOk(['port', 'publish', 'web', 'other', '8181:80/udp', '--quiet']);
    await sb.brnetOk(['port', 'unpublish', 'web', 'other']);
  });

  it('rejects bad SPECs (2), unknown names (3), internal networks (4), changing nothing', async () => {
    const before = await snapshot(sb);
    const cases: [string[], number][] = [
      [['port', 'publish', 'web', 'app', '80-82:90-91'], 2],
      [['port', 'publish', 'web', 'app', '0:80'], 2],
      [['port', 'publish', 'web', 'app', '8080:80/icmp'], 2],
      [['port', 'publish', 'web', 'app', '[fd98::1]:8088:80'], 2], // the endpoint has no IPv6
      [['port', 'publish', 'nope', 'app', '80'], 3],
      [['port', 'publish', 'web', 'nope', '80'], 3],
      [['port', 'unpublish', 'web', 'app', '9999'], 3],
      [['port', 'ls', 'nope'], 3],
      [['port', 'ls', 'web', 'nope'], 3],
      [['port', 'publish', 'inner', 'hidden', '8090:80'], 4],
    ];
    for (const [args, code] of cases) {
      const r = await sb.brnet(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^brnet: /);
    }
    const j = await sb.brnet(['port', 'publish', 'web', 'app', '70000', '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stderr).error).toMatchObject({ code: 'USAGE', exitCode: 2 });
    expect(await snapshot(sb)).toEqual(before);
  });

  it('prints the plan with --dry-run and changes nothing', async () => {
    const before = await snapshot(sb);
    const r = await sb.brnetOk(['port', 'publish', 'web', 'other', '8443:443', '--dry-run']);
    if (backend === 'iptables') {
      expect(r.stdout).toContain('iptables-restore --noflush');
      expect(r.stdout).toMatch(/-[AI] BRNET-DNAT-\w+ (\d+ )?-p tcp -m tcp --dport 8443 .* -j DNAT --to-destination 10\.88\.0\.3:443/);
    } else {
      expect(r.stdout).toContain('nft -f -');
      expect(r.stdout).toMatch(/^add rule ip brnet dnat-\w+ tcp dport 8443 counter dnat to 10\.88\.0\.3:443 /m);
    }
    expect(r.stdout).toContain('conntrack -R -');
    expect(r.stdout).toContain('-D -f ipv4 -p tcp --orig-port-dst 8443');
    expect(await snapshot(sb)).toEqual(before);
  });

  it('forgets tracked flows when publishing and unpublishing', async () => {
    await insertFlow(sb, 'udp', '198.18.0.1', 8054);
    expect(await flowsTo(sb, 'udp', 8054)).toContain('dport=8054');
    await sb.brnetOk(['port', 'publish', 'web', 'app', '8054:53/udp']);
    expect(await flowsTo(sb, 'udp', 8054)).toBe('');
    await insertFlow(sb, 'tcp', '198.18.0.1', 8080);
    expect(await flowsTo(sb, 'tcp', 8080)).toContain('dport=8080');
    await sb.brnetOk(['port', 'unpublish', 'web', 'app', '8054:53/udp']);
    expect(await flowsTo(sb, 'tcp', 8080)).toContain('dport=8080'); // not this one's
    await sb.brnetOk(['port', 'unpublish', 'web', 'app', '8080:80']);
    expect(await flowsTo(sb, 'tcp', 8080)).toBe('');
  });

  it('unpublishes: the same probes fail afterwards, and without SPEC everything goes', async () => {
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'udp', '198.18.0.1', 8053)).ok).toBe(true);
    const r = await sb.brnetOk(['port', 'unpublish', 'web', 'app', '53/udp']);
    expect(r.stdout).toBe('0.0.0.0:8053->53/udp\n');
    for (const [from, addr] of [['client', '198.18.0.1'], [null, '127.0.0.1'], ['other', '10.88.0.1'], ['app', '198.18.0.1']] as const) {
      const u = await probe(sb, from, 'udp', addr, 8053, { timeoutMs: 1_000 });
      expect(u.ok, `${from} -> ${addr}: ${JSON.stringify(u)}`).toBe(false);
    }
    await sb.brnetOk(['port', 'unpublish', 'web', 'app']);
    expect((await sb.brnetOk(['port', 'ls', '--json'])).json()).toEqual([]);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 9090, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 7100, { timeoutMs: 1_000 })).ok).toBe(false);
    // No rule mentions a published port any more.
    expect(await sb.rulesText()).not.toMatch(/-j DNAT|--dport|dnat to|dport/);
    // and the port is free again
    await sb.brnetOk(['port', 'publish', 'web', 'other', '8080:80']);
  });
});

describeRoot(`port publish on a dual-stack network [${backend}]`, () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.addOutsideClient('client', { v6: true });
    await sb.brnetOk(['network', 'create', 'dual', '--ipv6', '--subnet', '10.89.0.0/24', '--subnet', 'fd10::/64']);
    await addEndpoint(sb, 'dual', 'app', { ip: '10.89.0.2', ip6: 'fd10::2' });
    await addEndpoint(sb, 'dual', 'other', { ip: '10.89.0.3', ip6: 'fd10::3' });
    for (const p of [80, 81]) await startEcho(sb, 'app', 'tcp', p, { v6: true });
    await startEcho(sb, 'app', 'udp', 53, { v6: true });
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('binds IPv4 and IPv6 with the same host port', async () => {
    const r = await sb.brnetOk(['port', 'publish', 'dual', 'app', '8080:80', '8053:53/udp', '81', '--json']);
    const ports = r.json().ports.map((p: any) => `${p.hostIp}|${p.hostPort}|${p.containerPort}/${p.proto}`);
    expect(ports.slice(0, 4)).toEqual(['0.0.0.0|8080|80/tcp', '::|8080|80/tcp', '0.0.0.0|8053|53/udp', '::|8053|53/udp']);
    const [e4, e6] = r.json().ports.slice(4);
    expect(e4).toMatchObject({ hostIp: '0.0.0.0', containerPort: 81 });
    expect(e6).toMatchObject({ hostIp: '::', containerPort: 81, hostPort: e4.hostPort });
    const human = (await sb.brnetOk(['port', 'ls', 'dual', 'app', '-q'])).stdout;
    expect(human).toContain('[::]:8080\n');
  });

  it('is reachable over IPv6 from an outside client, which the endpoint sees by its address', async () => {
    const t = await probe(sb, 'client', 'tcp', 'fd98::1', 8080);
    expect(t, JSON.stringify(t)).toMatchObject({ ok: true, peer: 'fd98::2' });
    const u = await probe(sb, 'client', 'udp', 'fd98::1', 8053);
    expect(u, JSON.stringify(u)).toMatchObject({ ok: true, peer: 'fd98::2' });
    const t4 = await probe(sb, 'client', 'tcp', '198.18.0.1', 8080);
    expect(t4, JSON.stringify(t4)).toMatchObject({ ok: true, peer: '198.18.0.2' });
    const port = (await sb.brnetOk(['port', 'ls', 'dual', 'app', '--json'])).json().find((p: any) => p.containerPort === 81).hostPort;
    expect((await probe(sb, 'client', 'tcp', 'fd98::1', port)).ok).toBe(true);
    expect((await probe(sb, 'other', 'tcp', 'fd10::1', 8080)).ok).toBe(true);
    expect((await probe(sb, 'other', 'tcp', 'fd98::1', 8080)).ok).toBe(true);
  });

  it('publishes on one IPv6 address only', async () => {
    const r = await sb.brnetOk(['port', 'publish', 'dual', 'other', '[fd98::1]:8090:80']);
    expect(r.stdout).toBe('[fd98::1]:8090->80/tcp\n');
    const before = await snapshot(sb);
    const c = await sb.brnet(['port', 'publish', 'dual', 'app', '[::]:8090:81']);
    expect(c.code, c.stderr).toBe(4);
    expect(await snapshot(sb)).toEqual(before);
    // ...while the IPv4 port of the same number is free
    await sb.brnetOk(['port', 'publish', 'dual', 'app', '0.0.0.0:8090:81']);
    await sb.brnetOk(['port', 'unpublish', 'dual', 'other']);
  });

  it('stops answering after unpublish', async () => {
    await sb.brnetOk(['port', 'unpublish', 'dual', 'app', '8080:80', '53/udp']);
    expect((await probe(sb, 'client', 'tcp', 'fd98::1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'udp', 'fd98::1', 8053, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect(await sb.rulesText()).not.toMatch(/--dport 8080|dport 8080/);
  });
});

describeRoot(`port publish on a routed network [${backend}]`, () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.addOutsideClient('client');
    await sb.brnetOk(['network', 'create', 'direct', '--subnet', '10.90.0.0/24', '--gateway-mode-ipv4', 'routed']);
    await addEndpoint(sb, 'direct', 'app', { ip: '10.90.0.2' });
    for (const p of [80, 81]) await startEcho(sb, 'app', 'tcp', p);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('opens the container port without NAT, and closes it again', async () => {
    expect((await probe(sb, 'client', 'tcp', '10.90.0.2', 80, { timeoutMs: 1_000 })).ok).toBe(false);
    const r = await sb.brnetOk(['port', 'publish', 'direct', 'app', '8080:80', '--json']);
    expect(r.json().ports).toEqual([{ network: 'direct', endpoint: 'app', proto: 'tcp', hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, proxy: null }]);
    const t = await probe(sb, 'client', 'tcp', '10.90.0.2', 80);
    expect(t, JSON.stringify(t)).toMatchObject({ ok: true, peer: '198.18.0.2' });
    expect((await probe(sb, 'client', 'tcp', '10.90.0.2', 81, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await probe(sb, 'client', 'tcp', '198.18.0.1', 8080, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await sb.brnetOk(['port', 'ls'])).stdout).toMatch(/direct\s+app\s+tcp\s+routed\s+10\.90\.0\.2:80/);
    await sb.brnetOk(['port', 'unpublish', 'direct', 'app', '80']);
    expect((await probe(sb, 'client', 'tcp', '10.90.0.2', 80, { timeoutMs: 1_000 })).ok).toBe(false);
  });
});
}
