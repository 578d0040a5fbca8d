// Legacy links as data: the PORT grammar, the state's shape for them, the rules both backends
// render (read back from what iptables-save and nft -j listed for them), and the plans of
// link, unlink and endpoint rm.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/core/host.ts';
import { linkEndpoints, linkFlows, parseLinkPort, unlinkEndpoints, withoutLinksTo } from '../../src/core/links.ts';
import { dryRun } from '../../src/core/runner.ts';
import { parseSave } from '../../src/firewall/iptables.ts';
import { compareNft } from '../../src/firewall/nft-check.ts';
import { renderNft } from '../../src/firewall/nft-rules.ts';
import { parseNftJson, tableEdits } from '../../src/firewall/nftables.ts';
import { TABLES, chainId, renderRules } from '../../src/firewall/rules.ts';
import { migrate } from '../../src/state/migrate.ts';
import { type State, StateSchema } from '../../src/state/schema.ts';
import { serialize } from '../../src/state/store.ts';
import { ShapeError } from '../../src/validate/shape.ts';
import { thrown } from '../helpers/errors.ts';
import { linkState } from '../fixtures/links.ts';
import { fixtureState } from '../fixtures/state.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const quiet = (s: State) => s.networks[0]!;
const fwd = (s: State, f: 4 | 6 = 4) => renderRules(s)[f].filter.get('BRNET-FORWARD') ?? [];

describe('PORT[/PROTO]', () => {
  it.each([
    ['80', { proto: 'tcp', port: 80 }],
    ['53/udp', { proto: 'udp', port: 53 }],
    ['9/SCTP', { proto: 'sctp', port: 9 }],
    ['65535/tcp', { proto: 'tcp', port: 65535 }],
    ['1', { proto: 'tcp', port: 1 }],
  ])('%s', (spec, want) => expect(parseLinkPort(spec)).toEqual(want));

  it.each(['0', '65536', '99999', '', 'http', '80/icmp', '80/', '/tcp', '80-81', '-1', '8 0', '80/tcp/udp', '0x50'])('refuses "%s" with 2', (spec) => {
    const e = thrown(() => parseLinkPort(spec));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^invalid port "/);
  });
});

describe('links in the state file', () => {
  const raw = () => JSON.parse(serialize(linkState()));
  const message = (s: unknown) => {
    try {
      StateSchema(s);
    } catch (e) {
      expect(e).toBeInstanceOf(ShapeError);
      return (e as Error).message;
    }
    throw new Error('expected a ShapeError');
  };

  it('reads back what is written', () => {
    expect(StateSchema(raw())).toEqual(linkState());
  });

  it.each<[string, (r: any) => void, string]>([
    ['a link to no endpoint', (r) => (r.networks[0].endpoints[0].links[0].to = 'ghost'), 'networks.0.endpoints.0.links.0.to: no endpoint ghost in network quiet'],
    ['a link to an endpoint of another network', (r) => (r.networks[0].endpoints[0].links[0].to = 'i2'), 'networks.0.endpoints.0.links.0.to: no endpoint i2 in network quiet'],
    ['a link to itself', (r) => (r.networks[0].endpoints[1].links[0].to = 'b'), 'networks.0.endpoints.1.links.0.to: endpoint b is linked to itself'],
    ['a link listed twice', (r) => r.networks[0].endpoints[0].links.push({ to: 'b', proto: 'tcp', port: 80 }), 'networks.0.endpoints.0.links.2: the link to b on 80/tcp is listed twice'],
    ['port 0', (r) => (r.networks[0].endpoints[0].links[0].port = 0), 'networks.0.endpoints.0.links.0.port: expected a whole number from 1 to 65535, got 0'],
    ['a port that is text', (r) => (r.networks[0].endpoints[0].links[0].port = '80 -j ACCEPT'), 'networks.0.endpoints.0.links.0.port: expected a whole number from 1 to 65535, got "80 -j ACCEPT"'],
    ['another protocol', (r) => (r.networks[0].endpoints[0].links[0].proto = 'all'), 'networks.0.endpoints.0.links.0.proto: expected one of tcp, udp, sctp, got "all"'],
    ['a name that would be a rule', (r) => (r.networks[0].endpoints[0].links[0].to = 'b -j ACCEPT'), 'networks.0.endpoints.0.links.0.to: expected a name of 1-64 characters from A-Z a-z 0-9 _ . -, got "b -j ACCEPT"'],
    ['links that are no list', (r) => (r.networks[0].endpoints[0].links = { to: 'b' }), 'networks.0.endpoints.0.links: expected an array, got object'],
  ])('refuses %s, naming where', (_what, edit, want) => {
    const r = raw();
    edit(r);
    expect(message(r)).toBe(want);
  });

  it('a file written before links reads with none', () => {
    const r = JSON.parse(serialize(fixtureState()));
    for (const n of r.networks) for (const e of n.endpoints) delete e.links;
    const got = StateSchema(migrate(r, 'state.json'));
    expect(got.networks.flatMap((n) => n.endpoints).every((e) => Array.isArray(e.links) && e.links.length === 0)).toBe(true);
  });
});

describe('rendering links', () => {
  it('iptables: each link is an accept to TO and one for its replies, just before the ICC drop, owned by FROM', () => {
    const s = linkState();
    const br = quiet(s).bridge;
    const rules = fwd(s);
    const drop = rules.indexOf(`-i ${br} -o ${br} -m comment --comment brnet@0a1b2c3d:quiet -j DROP`);
    const mine = rules.flatMap((r, i) => (r.includes(` -i ${br} -o ${br} -p `) ? [i] : []));
    expect(mine).toHaveLength(8); // a→b tcp 80, a→b udp 53, b→a sctp 9, c→a tcp 443
    expect(Math.max(...mine)).toBe(drop - 1);
    expect(rules).toContain(`-s 10.6.0.2/32 -d 10.6.0.3/32 -i ${br} -o ${br} -p tcp -m tcp --dport 80 -m comment --comment brnet@0a1b2c3d:quiet:a -j ACCEPT`);
    expect(rules).toContain(`-s 10.6.0.3/32 -d 10.6.0.2/32 -i ${br} -o ${br} -p tcp -m tcp --sport 80 -m conntrack --ctstate ESTABLISHED -m comment --comment brnet@0a1b2c3d:quiet:a -j ACCEPT`);
    expect(rules).toContain(`-s 10.6.0.3/32 -d 10.6.0.2/32 -i ${br} -o ${br} -p sctp -m sctp --dport 9 -m comment --comment brnet@0a1b2c3d:quiet:b -j ACCEPT`);
    // an internal network has no conntrack accept: the way back is the second rule
    const inner = s.networks[1]!.bridge;
    expect(fwd(s)).toContain(`-s 10.7.0.3/32 -d 10.7.0.2/32 -i ${inner} -o ${inner} -p tcp -m tcp --sport 5432 -m conntrack --ctstate ESTABLISHED -m comment --comment brnet@0a1b2c3d:inner:i1 -j ACCEPT`);
    // no link rule of the ICC-on network, nor anything in the per-network chains
    expect(rules.filter((r) => r.includes(':open:'))).toEqual([]);
    for (const [chain, specs] of renderRules(s)[4].filter) if (chain !== 'BRNET-FORWARD') expect(specs.join('\n')).not.toMatch(/--[ds]port/);
  });

  it('IPv6: only links between endpoints that both have an address, after neighbour discovery', () => {
    const s = linkState();
    const br = quiet(s).bridge;
    const v6 = fwd(s, 6);
    expect(v6.filter((r) => r.includes('-s fd00:6::'))).toHaveLength(6); // c has no IPv6: its link is IPv4 only
    expect(v6.filter((r) => r.includes('--icmpv6-type'))).toEqual([
      `-i ${br} -o ${br} -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m comment --comment brnet@0a1b2c3d:quiet -j ACCEPT`,
      `-i ${br} -o ${br} -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m comment --comment brnet@0a1b2c3d:quiet -j ACCEPT`,
    ]);
    expect(v6.findIndex((r) => r.includes('--icmpv6-type'))).toBeLessThan(v6.findIndex((r) => r.includes('-s fd00:6::')));
    // without links, an ICC-off network renders as before: no neighbour discovery either
    const bare = linkState();
    for (const e of quiet(bare).endpoints) e.links = [];
    expect(fwd(bare, 6).filter((r) => r.includes('icmp'))).toEqual([]);
  });

  it('a link with ICC on is only recorded: the rules are those of the same state without it', () => {
    const s = linkState();
    const none = linkState();
    none.networks[2]!.endpoints[0]!.links = [];
    expect(renderRules(s)).toEqual(renderRules(none));
    expect(renderNft(s)).toEqual(renderNft(none));
  });

  it('nftables: the same rules in the network\'s ICC chain, before its drop', () => {
    const s = linkState();
    const n = quiet(s);
    const icc = renderNft(s)[4].chains.get(`icc-${chainId(n)}`) ?? [];
    expect(icc.at(-2)).toBe(`oifname "${n.bridge}" counter drop comment "brnet@0a1b2c3d:quiet"`);
    expect(icc.slice(0, 2)).toEqual([
      `oifname "${n.bridge}" ip saddr 10.6.0.2 ip daddr 10.6.0.3 tcp dport 80 counter accept comment "brnet@0a1b2c3d:quiet:a"`,
      `oifname "${n.bridge}" ip saddr 10.6.0.3 ip daddr 10.6.0.2 tcp sport 80 ct state established counter accept comment "brnet@0a1b2c3d:quiet:a"`,
    ]);
    const icc6 = renderNft(s)[6].chains.get(`icc-${chainId(n)}`) ?? [];
    expect(icc6.slice(0, 2)).toEqual([
      `oifname "${n.bridge}" icmpv6 type nd-neighbor-solicit counter accept comment "brnet@0a1b2c3d:quiet"`,
      `oifname "${n.bridge}" icmpv6 type nd-neighbor-advert counter accept comment "brnet@0a1b2c3d:quiet"`,
    ]);
  });

  it('read back from what iptables-save listed, the chains are exactly those rendered', () => {
    const [v4, v6] = fixture('links.save').split('\n#6\n');
    const s = linkState();
    const rs = renderRules(s);
    for (const [f, text] of [[4, v4], [6, v6]] as const) {
      const k = parseSave(text ?? '');
      for (const t of TABLES) expect(Object.fromEntries(k.tables[t]), `IPv${f} ${t}`).toEqual(Object.fromEntries(rs[f][t]));
    }
  });

  it('read back from what nft -j listed, check is clean', () => {
    const k = parseNftJson(['ip', 'ip6'].map((f) => fixture(`nft/links-${f}.json`).trim()).join('\n'));
    expect(k[4].unreadable).toEqual([]);
    expect(k[6].unreadable).toEqual([]);
    const s = linkState();
    expect(compareNft(s.instance, renderNft(s), k)).toEqual({ drift: [], foreign: [], differs: [] });
    // and a link the kernel lacks is drift
    const more = linkState();
    quiet(more).endpoints[1]!.links.push({ to: 'c', proto: 'tcp', port: 22 });
    const { drift } = compareNft(more.instance, renderNft(more), k);
    expect(drift.map((d) => d.what)).toEqual([expect.stringMatching(/^IPv4 nftables rule in chain icc-f+: oifname "br-f+" ip saddr 10\.6\.0\.3 ip daddr 10\.6\.0\.4 tcp dport 22 /), expect.stringMatching(/tcp sport 22 /)]);
  });

  it('a new link changes only its network\'s ICC chain (nftables)', () => {
    const a = linkState();
    const b = linkState();
    quiet(b).endpoints[2]!.links.push({ to: 'b', proto: 'udp', port: 123 });
    const edits = tableEdits(4, renderNft(a, new Set(['quiet']))[4], renderNft(b, new Set(['quiet']))[4]);
    expect(edits[0]).toBe(`flush chain ip brnet icc-${chainId(quiet(a))}`);
    expect(edits.slice(1).every((l) => l.startsWith(`add rule ip brnet icc-${chainId(quiet(a))} `))).toBe(true);
  });
});

describe('link and unlink plans', () => {
  const host = { firewalld: async () => null } as unknown as Host; // linking reads nothing of the host (firewalld: not running)
  const plan = async <R>(s: State, op: { plan(s: State, h: Host): Promise<R> }) => op.plan(s, host);

  it('link adds the new ports only, and the rules follow from the state', async () => {
    const s = linkState();
    const p = await plan(s, linkEndpoints('quiet', 'a', 'b', ['80', '443', '443/tcp', '22/udp']));
    expect(p.result.links).toEqual([{ to: 'b', proto: 'tcp', port: 443 }, { to: 'b', proto: 'udp', port: 22 }]);
    expect(quiet(p.state!).endpoints[0]!.links).toHaveLength(4);
    expect(p.steps).toEqual([]);
    expect(quiet(s).endpoints[0]!.links).toHaveLength(2); // the state read is left as it was
    const again = await plan(p.state!, linkEndpoints('quiet', 'a', 'b', ['443']));
    expect(again.state).toBeNull();
    expect(again.result.links).toEqual([]);
  });

  it('--dry-run shows the rule change, with either backend', async () => {
    const s = linkState();
    const ipt = await dryRun(s, linkEndpoints('quiet', 'c', 'b', ['8080']), host);
    expect(ipt.text).toMatch(/^iptables-restore --noflush <<'EOF'\n\*filter\n-I BRNET-FORWARD \d+ -s 10\.6\.0\.4\/32 -d 10\.6\.0\.3\/32 .*--dport 8080 .*\n-I BRNET-FORWARD \d+ -s 10\.6\.0\.3\/32 -d 10\.6\.0\.4\/32 .*--sport 8080 .*\nCOMMIT\nEOF$/);
    const nft = { ...linkState(), config: { ...s.config, firewallBackend: 'nftables' as const } };
    const n = await dryRun(nft, linkEndpoints('quiet', 'c', 'b', ['8080']), host);
    expect(n.text).toMatch(/^nft -f - <<'EOF'\nflush chain ip brnet icc-f+\n/);
    expect(n.text).toContain('tcp dport 8080 counter accept comment "brnet@0a1b2c3d:quiet:c"');
  });

  it('on an ICC-on network: recorded, with a note, and no rule', async () => {
    const s = linkState();
    const p = await plan(s, linkEndpoints('open', 'o2', 'o1', ['80']));
    expect(p.notes?.[0]).toMatch(/ICC on/);
    expect(p.state!.networks[2]!.endpoints[1]!.links).toEqual([{ to: 'o1', proto: 'tcp', port: 80 }]);
    expect((await dryRun(s, linkEndpoints('open', 'o2', 'o1', ['80']), host)).text).toBe('');
  });

  it('unknown names are 3, a link to itself 2, before anything is planned', async () => {
    const s = linkState();
    expect((await plan(s, linkEndpoints('quiet', 'a', 'ghost', ['80'])).catch((e) => e)).exitCode).toBe(3);
    expect((await plan(s, linkEndpoints('nonet', 'a', 'b', ['80'])).catch((e) => e)).exitCode).toBe(3);
    expect((await plan(s, linkEndpoints('quiet', 'a', 'i2', ['80'])).catch((e) => e)).exitCode).toBe(3);
    expect(thrown(() => linkEndpoints('quiet', 'a', 'a', ['80'])).exitCode).toBe(2);
    expect(thrown(() => linkEndpoints('quiet', 'a', 'b', ['80', 'x'])).exitCode).toBe(2);
    expect(thrown(() => unlinkEndpoints('quiet', 'b', 'b', [])).exitCode).toBe(2);
  });

  it('unlink removes the named ports, or all links to TO; a port not linked is 3', async () => {
    const s = linkState();
    const one = await plan(s, unlinkEndpoints('quiet', 'a', 'b', ['53/udp']));
    expect(one.result.links).toEqual([{ to: 'b', proto: 'udp', port: 53 }]);
    expect(quiet(one.state!).endpoints[0]!.links).toEqual([{ to: 'b', proto: 'tcp', port: 80 }]);
    const all = await plan(s, unlinkEndpoints('quiet', 'a', 'b', []));
    expect(quiet(all.state!).endpoints[0]!.links).toEqual([]);
    expect(all.afterFirewall).toHaveLength(1); // the flows of the links are forgotten
    const e = await plan(s, unlinkEndpoints('quiet', 'a', 'b', ['53'])).catch((x) => x);
    expect(e.exitCode).toBe(3);
    expect(e.message).toBe('endpoint quiet/a has no link to b on 53/tcp');
    const none = await plan(s, unlinkEndpoints('quiet', 'c', 'b', []));
    expect(none.state).toBeNull();
    expect((await plan(s, unlinkEndpoints('open', 'o1', 'o2', []))).afterFirewall).toEqual([]);
  });

  it('the flows a link let through, in each family both endpoints have', () => {
    const [a, b, c] = quiet(linkState()).endpoints as [any, any, any];
    expect(linkFlows(a, b, a.links).map((f) => f.line)).toEqual([
      '-D -p tcp --orig-src 10.6.0.2 --orig-dst 10.6.0.3 --orig-port-dst 80',
      '-D -p udp --orig-src 10.6.0.2 --orig-dst 10.6.0.3 --orig-port-dst 53',
      '-D -p tcp --orig-src fd00:6::2 --orig-dst fd00:6::3 --orig-port-dst 80',
      '-D -p udp --orig-src fd00:6::2 --orig-dst fd00:6::3 --orig-port-dst 53',
    ]);
    expect(linkFlows(c, a, c.links).map((f) => f.family)).toEqual([4]);
  });

  it('endpoints that leave take the links to them along; the others are the same objects', () => {
    const eps = quiet(linkState()).endpoints;
    const [a, b, c] = eps as [any, any, any];
    const stay = withoutLinksTo([b, c], [a]);
    expect(stay.map((e) => e.links)).toEqual([[], []]);
    const kept = withoutLinksTo([a, c], [b]);
    expect(kept[0]!.links).toEqual([]);
    expect(kept[1]).toBe(c);
  });
});
