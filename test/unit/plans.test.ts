// Whole plans, as `--dry-run` prints them, of every mutating operation planned against a host
// described here: no root, no kernel. Each plan is a file snapshot; a change to what brnet
// would run shows up as a diff of that file.
import { describe, expect, it } from 'vitest';
import { setConfig } from '../../src/core/config.ts';
import { addEndpoint } from '../../src/core/endpoint.ts';
import { removeEndpoints } from '../../src/core/endpoint-rm.ts';
import type { Host } from '../../src/core/host.ts';
import { createNetwork } from '../../src/core/network.ts';
import { removeNetworks } from '../../src/core/network-rm.ts';
import { publishPorts, unpublishPorts } from '../../src/core/port.ts';
import { restore } from '../../src/core/restore.ts';
import { type Operation, dryRun } from '../../src/core/runner.ts';
import { parseSave } from '../../src/firewall/iptables.ts';
import { parseNftJson } from '../../src/firewall/nftables.ts';
import { TABLES, jumps, renderRules } from '../../src/firewall/rules.ts';
import type { HostLink, HostView } from '../../src/net/host.ts';
import { type State, emptyState } from '../../src/state/schema.ts';
import { fixtureState } from '../fixtures/state.ts';

const link = (ifname: string, over: Partial<HostLink> = {}): HostLink => ({
  ifname,
  kind: null,
  master: null,
  mtu: 1500,
  address: '52:54:00:12:34:56',
  up: true,
  alias: null,
  group: 0,
  ...over,
});

/**
 * A host with an uplink eth0 (192.168.1.10/24, 2001:db8:1::10/64), the bridges of the
 * fixture state's networks, and `extra`.
 */
function fixtureHost(extra: HostLink[] = [], over: Partial<Host> = {}, bridges = fixtureState().networks.map((n) => n.bridge)): Host {
  // brnet's devices carry its marks (the fixture state has no instance yet: the marks of
  // before instances) and the bridges the MACs brnet gave them.
  const nets = fixtureState().networks;
  const bridgeLink = (b: string) => {
    const n = nets.find((x) => x.bridge === b);
    return link(b, { kind: 'bridge', alias: n ? `brnet:${n.name}` : null, ...(n ? { address: n.bridgeMac, group: 0x2bad } : {}) });
  };
  const marked = (l: HostLink) => {
    const owner = nets.flatMap((n) => n.endpoints.map((e) => ({ n, e }))).find(({ e }) => e.hostIfname === l.ifname);
    return owner && l.alias === null ? { ...l, alias: `brnet:${owner.n.name}:${owner.e.name}` } : l;
  };
  const links = new Map([link('lo'), link('eth0'), ...bridges.map(bridgeLink), ...extra.map(marked)].map((l) => [l.ifname, l]));
  const view: HostView = {
    links: { get: (n) => links.get(n), has: (n) => links.has(n) },
    addrs: [
      { family: 4, local: '192.168.1.10', prefixlen: 24, dev: 'eth0' },
      { family: 6, local: '2001:db8:1::10', prefixlen: 64, dev: 'eth0' },
    ],
    routes: [
      { dst: '192.168.1.0/24', dev: 'eth0' },
      { dst: '2001:db8:1::/64', dev: 'eth0' },
    ],
  };
  return {
    links: () => ({ ...view, addrs: [], routes: [] }),
    linkNames: () => [...links.keys()],
    linkMaster: (name) => links.get(name)?.master,
    linkAlias: (name) => links.get(name)?.alias ?? null,
    bridgePorts: (bridge) =>
      links.get(bridge)?.kind === 'bridge' ? new Set([...links.values()].filter((l) => l.master === bridge).map((l) => l.ifname)) : null,
    prefixes: () => view,
    addresses: async () => view,
    bridgeAddresses: async () => ({ ...view, addrs: [], routes: [] }),
    netnsStatus: (path) => (path.endsWith('/gone') ? 'missing' : 'ok'),
    netns: async () => ({ links: ['lo'], aliases: {}, defaultRoutes: [] }),
    nsIdentity: (path) => (path.endsWith('/gone') ? null : { dev: 4, ino: 4026532100 }),
    nsStat: (path) => (path.endsWith('/gone') ? null : path === '/proc/self/ns/net' ? { dev: 4, ino: 4026531840 } : { dev: 4, ino: 4026532100 }),
    processStart: () => '12345',
    pendingNetns: () => [],
    migrating: () => false,
    listeners: () => [],
    ephemeral: () => ({ start: 49153, end: 49200, reserved: new Set() }),
    hostIpv6: () => true,
    machineId: () => '0123456789abcdef0123456789abcdef',
    firewall: async () => parseSave(''),
    nftables: async () => null,
    firewalld: async () => null,
    ...over,
  };
}

/** Random parts (network ids, veth names) and what derives from them, made stable. */
const stable = (text: string) =>
  text
    .replace(/\bveth[0-9a-f]{7}\b/g, 'vethXXXXXXX')
    .replace(/:netns:[0-9a-f]{8}\b/g, ':netns:<token>')
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id12>')
    .replace(/\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b/g, '<mac>');

async function planOf(state: State, op: Operation<unknown> | Promise<Operation<unknown>>, host = fixtureHost()): Promise<string> {
  const { text } = await dryRun(state, await op, host);
  expect(text.length).toBeGreaterThan(0);
  return `${stable(text)}\n`;
}

const snap = (name: string) => `./__snapshots__/plans/${name}.plan`;

describe('plans against a described host', () => {
  it('network create on an empty host: bridge, addresses, sysctls, then the rules and the built-in jumps', async () => {
    const text = await planOf(emptyState(), createNetwork('web', { subnet: ['10.20.0.0/24'] }, false));
    expect(text).toMatch(/^ip link add name br-<id12> .*type bridge$/m);
    expect(text).toMatch(/^-I FORWARD 1 -m comment --comment brnet -j BRNET-FORWARD$/m);
    await expect(text).toMatchFileSnapshot(snap('network-create-first'));
  });

  it('network create beside other networks, dual stack, allocated subnets clear of the host', async () => {
    const text = await planOf(fixtureState(), createNetwork('v6', { ipv6: true }, false));
    expect(text).not.toMatch(/-I FORWARD/); // the jumps are there already
    expect(text).not.toContain('192.168.1.');
    await expect(text).toMatchFileSnapshot(snap('network-create-dual'));
  });

  it('network rm without endpoints: rules and bridge at once', async () => {
    await expect(await planOf(fixtureState(), removeNetworks(['quiet'], {}))).toMatchFileSnapshot(snap('network-rm'));
  });

  it('network rm --force with endpoints: rules, veths, bridge, then the flows', async () => {
    const host = fixtureHost([link('vethapp'), link('vethdb')]);
    const text = await planOf(fixtureState(), removeNetworks(['web'], { force: true }), host);
    expect(text.indexOf('link del dev vethapp')).toBeGreaterThan(text.indexOf('iptables-restore'));
    expect(text.indexOf('conntrack -R')).toBeGreaterThan(text.indexOf('link del dev vethapp'));
    await expect(text).toMatchFileSnapshot(snap('network-rm-force'));
  });

  it('endpoint add with a published port: rules first, then the veth, its namespace side, the flows', async () => {
    const text = await planOf(fixtureState(), addEndpoint('quiet', 'api', { netns: 'api', createNetns: true, publish: ['8081:80'] }), fixtureHost([], { netnsStatus: () => 'missing' }));
    expect(text.indexOf('iptables-restore')).toBeLessThan(text.indexOf('netns add api'));
    await expect(text).toMatchFileSnapshot(snap('endpoint-add'));
  });

  it('endpoint rm', async () => {
    const web = fixtureState().networks[0]!;
    const host = fixtureHost([link('vethdb', { master: web.bridge })]);
    await expect(await planOf(fixtureState(), removeEndpoints('web', ['db'], {}), host)).toMatchFileSnapshot(snap('endpoint-rm'));
  });

  it('port publish and unpublish: the rules, then the flows', async () => {
    await expect(await planOf(fixtureState(), publishPorts('web', 'db', ['127.0.0.1:5432:5432']))).toMatchFileSnapshot(snap('port-publish'));
    await expect(await planOf(fixtureState(), unpublishPorts('web', 'app', ['8080:80']))).toMatchFileSnapshot(snap('port-unpublish'));
  });

  it('config set iptables false: every IPv4 rule goes', async () => {
    const text = await planOf(fixtureState(), setConfig('iptables', 'false'));
    expect(text).toContain('iptables-restore');
    expect(text).not.toContain('ip6tables-restore');
    await expect(text).toMatchFileSnapshot(snap('config-iptables-off'));
  });

  it('restore after a reboot-like loss: the missing bridges and veths, then every rule, from the described kernel', async () => {
    const state = fixtureState();
    const web = state.networks[0]!;
    // Only web's bridge survived, with app's veth; db's veth and every rule are gone. db's
    // namespace is one brnet created: its loopback's mark proves it is still db's.
    const db = web.endpoints.find((e) => e.name === 'db')!;
    db.netnsCreated = true;
    db.netnsIdentity = { dev: 4, ino: 4026532100, start: null, token: 'feedc0de' };
    const host = fixtureHost([link('vethapp', { master: web.bridge })], { netns: async () => ({ links: ['lo'], aliases: { lo: 'brnet:netns:feedc0de' }, defaultRoutes: [] }) }, [web.bridge]);
    const { plan, text } = await dryRun(state, restore(), host);
    const drift = plan.result.drift.map((d) => `${d.kind}: ${d.what}`);
    expect(drift).toContain(`missing: veth vethdb of endpoint web/db`);
    expect(drift).toContain(`missing: bridge ${state.networks[1]!.bridge} of network quiet`);
    expect(drift).not.toContain('missing: veth vethapp of endpoint web/app');
    expect(text).toMatch(/^-I FORWARD 1 -m comment --comment brnet -j BRNET-FORWARD$/m);
    await expect(`${stable(text)}\n`).toMatchFileSnapshot(snap('restore'));
    // Everything in place, the rules included: nothing to do.
    const rs = renderRules(state);
    const kernel = (f: 4 | 6) => {
      let text = '';
      for (const t of TABLES) {
        text += `*${t}\n`;
        for (const [chain, rules] of rs[f][t]) text += `:${chain} - [0:0]\n${rules.map((r) => `-A ${chain} ${r}\n`).join('')}`;
        for (const j of jumps()) if (j.table === t) text += `-A ${j.chain} ${j.spec}\n`;
        text += 'COMMIT\n';
      }
      return parseSave(text);
    };
    const veths = state.networks.flatMap((n) => n.endpoints.map((e) => link(e.hostIfname, { master: n.bridge })));
    const bridgeAddrs: HostView['addrs'] = state.networks.flatMap((n) =>
      [n.ipv4, n.ipv6].flatMap((fc) => (fc?.gateway ? [{ family: fc.gateway.includes(':') ? 6 : 4, local: fc.gateway, prefixlen: Number(fc.subnet.split('/')[1]), dev: n.bridge } as const] : [])),
    );
    const intact = fixtureHost(veths, { firewall: async (f) => kernel(f) });
    const whole = { ...intact, bridgeAddresses: async () => ({ ...intact.links(), addrs: bridgeAddrs }) };
    const again = await dryRun(state, restore(), whole);
    expect(again.plan.result.drift).toEqual([]);
    // Only the sysctls are listed again: their step reads each value and writes what differs.
    expect(again.text.split('\n').filter((l) => l && !l.startsWith('sysctl -w '))).toEqual([]);
  });

  it('the nftables backend: one nft transaction, both families, the tables made on the first network', async () => {
    const nft = (s: State): State => ({ ...s, config: { ...s.config, firewallBackend: 'nftables' } });
    const host = fixtureHost([], { nftables: async () => parseNftJson('') });
    const first = await planOf(nft(emptyState()), createNetwork('web', { subnet: ['10.20.0.0/24'], ipv6: true }, false), host);
    expect(first).not.toContain('iptables-restore');
    expect(first.match(/^nft -f - <<'EOF'$/gm)).toHaveLength(1);
    await expect(first).toMatchFileSnapshot(snap('nft-network-create-first'));
    const publish = await planOf(nft(fixtureState()), publishPorts('web', 'db', ['127.0.0.1:5432:5432']), host);
    await expect(publish).toMatchFileSnapshot(snap('nft-port-publish'));
  });

  it('refusals come from the described host: an address in use, a device that is not a bridge', async () => {
    await expect(dryRun(emptyState(), createNetwork('lan', { subnet: ['192.168.1.0/25'] }, false), fixtureHost())).rejects.toThrow(
      /subnet 192\.168\.1\.0\/25 overlaps address 192\.168\.1\.10\/24 on eth0/,
    );
    await expect(dryRun(emptyState(), createNetwork('x', { bridgeName: 'eth0' }, false), fixtureHost())).rejects.toThrow(/device eth0 exists and is not a bridge/);
    await expect(dryRun(fixtureState(), await addEndpoint('web', 'late', { netns: 'gone' }), fixtureHost())).rejects.toThrow(/network namespace gone not found/);
  });
});
