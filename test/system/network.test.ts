// `brnet network` against the real kernel, inside a private sandbox.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, describeRoot, unmark } from '../helpers/sandbox.ts';

let sb: Sandbox;
const stateFile = () => join(sb.stateDir, 'state.json');
const readStateText = () => {
  try {
    return readFileSync(stateFile(), 'utf8');
  } catch {
    return '';
  }
};

async function link(name: string): Promise<any | null> {
  const r = await sb.exec(['ip', '-j', '-d', 'addr', 'show', 'dev', name]);
  return r.code === 0 ? (JSON.parse(r.stdout)[0] ?? null) : null;
}
const sysctl = async (k: string) => (await sb.sh(`cat /proc/sys/${k}`)).stdout.trim();

/** Everything a command could change: links, addresses, routes, rules, state. */
async function snapshot() {
  return {
    // names, kinds, MACs, MTUs, masters and addresses; not carrier or DAD flags, which the
    // kernel changes on its own
    links: ((await sb.ipJson(['-d', 'addr'])) as any[]).map((l) => [
      l.ifname, l.linkinfo?.info_kind, l.address, l.mtu, l.master, (l.addr_info ?? []).map((a: any) => `${a.local}/${a.prefixlen}`),
    ]),
    routes: (await sb.sh('ip route; ip -6 route')).stdout,
    v4: await sb.iptablesSave(4),
    v6: await sb.iptablesSave(6),
    state: readStateText(),
  };
}

describeRoot('network create / rm', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('creates a bridge with the first free default subnet, gateway, MAC and sysctls', async () => {
    const r = await sb.brnetOk(['network', 'create', 'web', '--json']);
    const n = r.json();
    expect(n.name).toBe('web');
    expect(n.id).toMatch(/^[0-9a-f]{64}$/);
    expect(n.bridge).toBe(`br-${n.id.slice(0, 12)}`);
    expect(n.ipv4).toEqual({ subnet: '172.17.0.0/16', gateway: '172.17.0.1', ipRange: null, auxAddresses: {} });
    expect(n.ipv6).toBeNull();
    expect(n).toMatchObject({ internal: false, icc: true, masquerade: true, gatewayModeIpv4: 'nat', endpoints: [] });
    const l = await link(n.bridge);
    expect(l.linkinfo.info_kind).toBe('bridge');
    expect(l.flags).toContain('UP');
    expect(l.ifalias).toMatch(/^brnet@[0-9a-f]{8}:web$/);
    expect(Number.parseInt(l.address.slice(0, 2), 16) & 0x03).toBe(0x02); // locally administered unicast
    expect(l.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain('172.17.0.1/16');
    expect(await sysctl('net/ipv4/ip_forward')).toBe('1');
    expect(await sysctl(`net/ipv4/conf/${n.bridge}/route_localnet`)).toBe('1');
    expect(await sysctl('net/bridge/bridge-nf-call-iptables')).toBe('1');
    const st = JSON.parse(readStateText());
    expect(st.version).toBe(1);
    expect(st.networks[0].name).toBe('web');
  });

  it('programs the firewall in brnet chains with owner comments and jumps from built-ins', async () => {
    const n = (await sb.brnetOk(['network', 'inspect', 'web', '--json'])).json();
    const br = n.bridge;
    const id = n.id.slice(0, 12);
    const save = unmark(await sb.iptablesSave(4));
    expect(save).toContain('-A FORWARD -m comment --comment brnet -j BRNET-FORWARD');
    expect(save).toContain('-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment brnet -j BRNET-DNAT');
    expect(save).toContain('-A POSTROUTING -m comment --comment brnet -j BRNET-POSTROUTING');
    expect(save).toContain(`-A BRNET-FORWARD -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "brnet:web" -j ACCEPT`);
    expect(save).toContain(`-A BRNET-FORWARD -i ${br} -m comment --comment "brnet:web" -j ACCEPT`);
    expect(save).toContain(`-A BRNET-IN-${id} ! -i ${br} -o ${br} -m comment --comment "brnet:web" -j DROP`);
    expect(save).toContain(`-A BRNET-POST-${id} -s 172.17.0.0/16 ! -o ${br} -m comment --comment "brnet:web" -j MASQUERADE`);
    // every rule in a BRNET chain names its owner
    for (const line of save.split('\n').filter((l) => l.startsWith('-A BRNET'))) expect(line).toMatch(/--comment "?brnet/);
  });

  it('allocates the next pool subnet, skipping one already used on the host', async () => {
    // another tool's bridge holding 172.18.0.0/16, and a route to 172.19.0.0/16
    await sb.sh('ip link add other0 type bridge && ip addr add 172.18.0.1/16 dev other0 && ip link set other0 up && ip route add 172.19.0.0/16 dev other0');
    const n = (await sb.brnetOk(['network', 'create', 'second', '--json'])).json();
    expect(n.ipv4.subnet).toBe('172.20.0.0/16');
    expect(await link('other0')).not.toBeNull();
  });

  it('creates a dual-stack network with all the options', async () => {
    const n = (
      await sb.brnetOk([
        'network', 'create', 'full', '--subnet', '10.44.0.0/24', '--gateway', '10.44.0.254', '--ip-range', '10.44.0.128/25',
        '--aux-address', 'router=10.44.0.2', '--ipv6', '--subnet', 'fd44::/64', '--bridge-name', 'brfull', '--mtu', '1400',
        '--no-icc', '--label', 'team=ops', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false',
        '-o', '.bridge.host_binding_ipv4=127.0.0.1', '--json',
      ])
    ).json();
    expect(n.bridge).toBe('brfull');
    expect(n.ipv4).toEqual({ subnet: '10.44.0.0/24', gateway: '10.44.0.254', ipRange: '10.44.0.128/25', auxAddresses: { router: '10.44.0.2' } });
    expect(n.ipv6.subnet).toBe('fd44::/64');
    expect(n.ipv6.gateway).toBe('fd44::1');
    expect(n).toMatchObject({ icc: false, masquerade: false, mtu: 1400, labels: { team: 'ops' }, hostBindingIp: '127.0.0.1' });
    const l = await link('brfull');
    expect(l.mtu).toBe(1400);
    const addrs = l.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(expect.arrayContaining(['10.44.0.254/24', 'fd44::1/64']));
    expect(await sysctl('net/ipv6/conf/brfull/accept_ra')).toBe('0');
    expect(await sysctl('net/ipv6/conf/brfull/accept_dad')).toBe('0');
    expect(await sysctl('net/ipv6/conf/all/forwarding')).toBe('1');
    const v4 = unmark(await sb.iptablesSave(4));
    expect(v4).toContain('-A BRNET-FORWARD -i brfull -o brfull -m comment --comment "brnet:full" -j DROP');
    expect(v4).not.toContain('-s 10.44.0.0/24 ! -o brfull'); // no masquerade
    const v6 = unmark(await sb.iptablesSave(6));
    expect(v6).toContain('-A BRNET-FORWARD -o brfull -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "brnet:full" -j ACCEPT');
  });

  it('renders internal, routed, nat-unprotected and SNAT networks as the reference does', async () => {
    await sb.brnetOk(['network', 'create', 'int', '--internal', '--bridge-name', 'brint', '--subnet', '10.45.0.0/24']);
    await sb.brnetOk(['network', 'create', 'rt', '--gateway-mode-ipv4', 'routed', '--bridge-name', 'brrt', '--subnet', '10.46.0.0/24']);
    await sb.brnetOk(['network', 'create', 'unp', '-o', 'com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected', '--bridge-name', 'brunp', '--subnet', '10.47.0.0/24']);
    await sb.brnetOk(['network', 'create', 'sn', '--snat-ipv4', '198.18.0.9', '--bridge-name', 'brsn', '--subnet', '10.48.0.0/24']);
    const v4 = unmark(await sb.iptablesSave(4));
    expect(v4).toContain('-A BRNET-FORWARD ! -i brint -o brint -m comment --comment "brnet:int" -j DROP');
    expect(v4).toContain('-A BRNET-FORWARD -i brint ! -o brint -m comment --comment "brnet:int" -j DROP');
    expect(v4).not.toMatch(/-s 10\.45\.0\.0\/24 .*MASQUERADE/);
    expect(v4).toMatch(/! -i brrt -o brrt -p icmp -m comment --comment "brnet:rt" -j ACCEPT/);
    expect(v4).not.toMatch(/-s 10\.46\.0\.0\/24 .*MASQUERADE/);
    expect(v4).toMatch(/! -i brunp -o brunp -m comment --comment "brnet:unp" -j ACCEPT/);
    expect(v4).toContain('-A BRNET-POST-');
    expect(v4).toMatch(/-s 10\.48\.0\.0\/24 ! -o brsn -m comment --comment "brnet:sn" -j SNAT --to-source 198\.18\.0\.9/);
    const internalGw = (await link('brint')).addr_info.map((a: any) => a.local);
    expect(internalGw).toContain('10.45.0.1');
  });

  it('an isolated internal network has no address on its bridge', async () => {
    const n = (await sb.brnetOk(['network', 'create', 'iso', '--internal', '--gateway-mode-ipv4', 'isolated', '--bridge-name', 'briso', '--json'])).json();
    expect(n.ipv4.gateway).toBeNull();
    expect((await link('briso')).addr_info.filter((a: any) => a.family === 'inet')).toEqual([]);
  });

  it('--inhibit-ipv4 keeps the gateway off the bridge but records it', async () => {
    const n = (await sb.brnetOk(['network', 'create', 'inh', '--inhibit-ipv4', '--subnet', '10.51.0.0/24', '--bridge-name', 'brinh', '--json'])).json();
    expect(n.ipv4.gateway).toBe('10.51.0.1');
    expect(n.inhibitIpv4).toBe(true);
    expect((await link('brinh')).addr_info.filter((a: any) => a.family === 'inet')).toEqual([]);
    await sb.brnetOk(['network', 'rm', 'inh']);
    expect(await link('brinh')).toBeNull();
  });

  it('adopts an existing bridge and never deletes it', async () => {
    await sb.sh('ip link add mybr type bridge && ip link set mybr up');
    const n = (await sb.brnetOk(['network', 'create', 'adopt', '--bridge-name', 'mybr', '--subnet', '10.49.0.0/24', '--json'])).json();
    expect(n.bridgeCreated).toBe(false);
    expect((await link('mybr')).addr_info.map((a: any) => a.local)).toContain('10.49.0.1');
    await sb.brnetOk(['network', 'rm', 'adopt']);
    const l = await link('mybr');
    expect(l).not.toBeNull();
    expect(l.addr_info.map((a: any) => a.local)).not.toContain('10.49.0.1');
    expect(await sb.iptablesSave(4)).not.toContain('mybr');
  });

  it('refuses a non-bridge device of that name (4) and changes nothing', async () => {
    await sb.sh('ip link add notbr type veth peer name notbr-p');
    const before = await snapshot();
    const r = await sb.brnet(['network', 'create', 'nb', '--bridge-name', 'notbr']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^brnet: device notbr exists and is not a bridge/);
    expect(await snapshot()).toEqual(before);
  });

  it('ls shows a table, -q names and --json an array', async () => {
    const table = await sb.brnetOk(['network', 'ls']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+ID\s+BRIDGE\s+IPV4\s+IPV6\s+ENDPOINTS\s+FLAGS/);
    expect(table.stdout).toContain('web');
    expect(table.stdout).not.toMatch(/\x1b\[/);
    const q = await sb.brnetOk(['network', 'ls', '-q']);
    expect(q.stdout.trim().split('\n')).toEqual(['web', 'second', 'full', 'int', 'rt', 'unp', 'sn', 'iso']);
    const j = (await sb.brnetOk(['--json', 'network', 'ls'])).json();
    expect(j.map((n: any) => n.name)).toContain('full');
  });

  it('--if-not-exists succeeds on identical settings and conflicts on others', async () => {
    const before = await snapshot();
    const same = await sb.brnet(['network', 'create', 'web', '--if-not-exists']);
    expect(same.code).toBe(0);
    const other = await sb.brnet(['network', 'create', 'web', '--if-not-exists', '--internal']);
    expect(other.code).toBe(4);
    expect(await snapshot()).toEqual(before);
  });

  it('--dry-run prints the plan with the restore payload and changes nothing', async () => {
    const before = await snapshot();
    const r = await sb.brnetOk(['network', 'create', 'dry', '--subnet', '10.50.0.0/24', '--dry-run']);
    expect(r.stdout).toMatch(/^ip link add name br-[0-9a-f]{12} address [0-9a-f:]{17} group 11181 type bridge$/m);
    expect(r.stdout).toContain('ip addr add 10.50.0.1/24 dev br-');
    expect(r.stdout).toContain("iptables-restore --noflush <<'EOF'");
    expect(r.stdout).toContain('-j MASQUERADE');
    expect(await snapshot()).toEqual(before);
  });

  it('refuses bad input and conflicts with the right exit code, changing nothing', async () => {
    const before = await snapshot();
    const cases: [string[], number, RegExp][] = [
      [['network', 'create', 'web'], 4, /network web already exists/],
      [['network', 'create', 'x1', '--subnet', '172.17.5.0/24'], 4, /overlaps network web/],
      [['network', 'create', 'x2', '--subnet', '198.18.0.0/15'], 0 as never, /./], // placeholder replaced below
      [['network', 'create', 'x3', '--bridge-name', 'brfull'], 4, /bridge brfull is already used by network full/],
      [['network', 'create', 'x4', '--subnet', '10.60.0.1/24'], 2, /it should be 10\.60\.0\.0\/24/],
      [['network', 'create', 'x5', '--subnet', '10.60.0.0/24', '--subnet', '10.61.0.0/24'], 2, /at most one IPv4/],
      [['network', 'create', 'x6', '--subnet', '10.60.0.0/24', '--gateway', '10.61.0.1'], 2, /not a usable address/],
      [['network', 'create', 'x7', '--mtu', '70000'], 2, /invalid MTU/],
      [['network', 'create', 'x8', '--ipv6', '--mtu', '1000'], 2, /IPv6 needs at least 1280/],
      [['network', 'create', 'x9', '--bridge-name', 'waytoolongbridgename'], 2, /invalid bridge name/],
      [['network', 'create', 'x10', '--gateway-mode-ipv4', 'isolated'], 2, /only be used with --internal/],
      [['network', 'create', 'x11', '-o', 'com.docker.network.bogus=1'], 2, /unknown option/],
      [['network', 'create', 'x12', '-o', 'com.docker.network.bridge.enable_icc=maybe'], 2, /expected true or false/],
      [['network', 'create', 'x13', '--ipv6', '--subnet', 'fe80::/80'], 2, /link-local/],
      [['network', 'create', 'x14', '--no-ipv4'], 2, /requires --ipv6/],
      [['network', 'create', '-bad'], 2, /./],
      [['network', 'rm', 'nosuch'], 3, /network nosuch not found/],
      [['network', 'inspect', 'nosuch'], 3, /not found/],
      [['network', 'frobnicate'], 2, /unknown command/],
    ];
    cases.splice(2, 1); // 198.18.0.0/15 is only used by the outside client in other tests
    for (const [args, code, re] of cases) {
      const r = await sb.brnet(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr.split('\n')[0]).toMatch(/^brnet: /);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    const j = await sb.brnet(['network', 'rm', 'nosuch', '--json']);
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'NOT_FOUND', message: 'network nosuch not found', exitCode: 3 } });
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a subnet overlapping a host address (4)', async () => {
    await sb.sh('ip link add hostbr type bridge && ip addr add 10.70.1.1/24 dev hostbr');
    const r = await sb.brnet(['network', 'create', 'clash', '--subnet', '10.70.0.0/16']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/overlaps address 10\.70\.1\.1\/24 on hostbr/);
  });

  it('refuses subnets overlapping a host route or a host IPv6 address (4)', async () => {
    await sb.sh('ip link add rtbr type bridge && ip link set rtbr up && ip route add 10.71.0.0/16 dev rtbr && ip addr add fd71::1/64 dev rtbr nodad');
    const r = await sb.brnet(['network', 'create', 'clash2', '--subnet', '10.71.5.0/24']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/overlaps route 10\.71\.0\.0\/16 on rtbr/);
    const r6 = await sb.brnet(['network', 'create', 'clash3', '--ipv6', '--subnet', '10.72.0.0/24', '--subnet', 'fd71::/48']);
    expect(r6.code).toBe(4);
    expect(r6.stderr).toMatch(/overlaps (address fd71::1\/64|route fd71::\/64) on rtbr/);
    await sb.sh('ip link del rtbr');
  });

  it('refuses subnets overlapping addresses on lo, IPv4 and IPv6 (4)', async () => {
    await sb.sh('ip addr add 10.73.0.1/24 dev lo && ip addr add 10.74.0.9/32 dev lo && ip addr add fd73::1/64 dev lo');
    try {
      for (const args of [
        ['--subnet', '10.73.0.0/24'],
        ['--subnet', '10.74.0.0/24'],
        ['--ipv6', '--subnet', '10.75.9.0/24', '--subnet', 'fd73::/64'],
      ]) {
        const r = await sb.brnet(['network', 'create', 'onlo', ...args]);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(4);
        expect(r.stderr).toMatch(/overlaps .* lo\b|overlaps address/);
      }
    } finally {
      await sb.sh('ip addr del 10.73.0.1/24 dev lo; ip addr del 10.74.0.9/32 dev lo; ip addr del fd73::1/64 dev lo');
      await sb.brnet(['network', 'rm', '--if-exists', 'onlo']);
    }
  });

  it('rm removes bridges, rules and jumps; --if-exists tolerates missing names', async () => {
    const names = (await sb.brnetOk(['network', 'ls', '-q'])).stdout.trim().split('\n');
    const bridges = (await sb.brnetOk(['network', 'ls', '--json'])).json().map((n: any) => n.bridge);
    await sb.brnetOk(['network', 'rm', ...names, 'ghost', '--if-exists']);
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('');
    for (const b of bridges) expect(await link(b)).toBeNull();
    for (const f of [4, 6] as const) {
      const save = unmark(await sb.iptablesSave(f));
      expect(save).not.toMatch(/BRNET|brnet/);
      for (const b of bridges) expect(save).not.toContain(b);
      expect(save).not.toMatch(/172\.17\.0\.0|10\.44\.0\.0|fd44::/);
    }
    expect(await link('other0')).not.toBeNull(); // not ours
  });
});

describeRoot('config', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('iptables false programs no rules; true installs them again', async () => {
    await sb.brnetOk(['config', 'set', 'iptables', 'false']);
    await sb.brnetOk(['config', 'set', 'ip6tables', 'false']);
    await sb.brnetOk(['network', 'create', 'plain', '--subnet', '10.80.0.0/24']);
    expect(await sb.iptablesSave(4)).not.toMatch(/BRNET/);
    expect((await link((await sb.brnetOk(['network', 'inspect', 'plain', '--json'])).json().bridge))?.flags).toContain('UP');
    await sb.brnetOk(['config', 'set', 'iptables', 'true']);
    expect(await sb.iptablesSave(4)).toMatch(/-s 10\.80\.0\.0\/24 .*MASQUERADE/);
    const show = (await sb.brnetOk(['config', 'show', '--json'])).json();
    expect(show).toEqual({ 'firewall-backend': 'iptables', iptables: true, ip6tables: false, 'ip-forward': true, 'userland-proxy': false, 'default-address-pools': null });
  });

  it('default-address-pools changes where subnets come from', async () => {
    await sb.brnetOk(['config', 'set', 'default-address-pools', '10.90.0.0/16/24']);
    const n = (await sb.brnetOk(['network', 'create', 'pooled', '--json'])).json();
    expect(n.ipv4.subnet).toBe('10.90.0.0/24');
    const bad = await sb.brnet(['config', 'set', 'default-address-pools', 'nonsense']);
    expect(bad.code).toBe(2);
    const unknown = await sb.brnet(['config', 'set', 'colour', 'blue']);
    expect(unknown.code).toBe(2);
  });
});
