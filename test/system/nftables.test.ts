// The nftables backend itself: its tables and nothing else, flushes and deletions repaired,
// live migration between the backends with traffic, one `nft` process per operation. (The
// traffic matrix runs against both backends in isolation, port and endpoint tests.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OutsideClient, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

let sb: Sandbox;
let client: OutsideClient;
const instance = () => JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8')).instance as string;
const traced = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('+ '));
const works = async (port: number) => (await probe(sb, client.ns, 'tcp', client.hostIp, port)).ok;
const brnetIptables = async () => `${await sb.iptablesSave(4)}\n${await sb.iptablesSave(6)}`.split('\n').filter((l) => /BRNET|brnet/.test(l));
const brnetTables = async () => (await sb.sh('nft list tables')).stdout.split('\n').filter((l) => / brnet$/.test(l));

describeRoot('the nftables backend', () => {
  beforeAll(async () => {
    sb = await Sandbox.create({ backend: 'nftables' });
    client = await sb.addOutsideClient();
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.81.0.0/24', '--ipv6', '--subnet', 'fd81::/64']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '-p', '8080:80']);
    await startEcho(sb, 'app', 'tcp', 80);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('keeps every rule in the tables ip brnet and ip6 brnet, each with a counter and its owner; none in iptables', async () => {
    expect(await brnetTables()).toEqual(['table ip brnet', 'table ip6 brnet']);
    expect(await brnetIptables()).toEqual([]);
    const inst = instance();
    const rules = (await sb.rulesText()).split('\n').filter((l) => /^\t\t/.test(l) && !/^\t\t(type|elements|oifname vmap|iifname vmap|fib daddr|jump )/.test(l) && !/^\t\t\s*"/.test(l));
    expect(rules.length).toBeGreaterThan(10);
    for (const r of rules) expect(r).toMatch(new RegExp(`counter .*comment "brnet@${inst}:[\\w.:-]+"$`));
    expect(await works(8080)).toBe(true);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });

  it('one nft process per operation, both families in one transaction; --dry-run prints it', async () => {
    const p = await sb.brnetOk(['port', 'publish', 'web', 'app', '8081:81', '--debug']);
    // One nft transaction (and conntrack, when there are flows to forget).
    expect(traced(p.stderr).filter((l) => / nft /.test(l))).toHaveLength(1);
    expect(traced(p.stderr)[0]).toMatch(/^\+ nft -f - <<\d+ lines/);
    const dry = await sb.brnetOk(['port', 'publish', 'web', 'app', '8082:82', '--dry-run']);
    expect(dry.stdout).toMatch(/^nft -f - <<'EOF'$/m);
    expect(dry.stdout).toMatch(/^add rule ip brnet dnat-\w{12} tcp dport 8082 counter dnat to 10\.81\.0\.2:82 comment "brnet@\w{8}:web:app"$/m);
    expect(dry.stdout).toMatch(/^add rule ip6 brnet dnat-\w{12} ip6 saddr != fe80::\/10 tcp dport 8082 counter dnat to \[fd81::2\]:82 /m);
    const c = await sb.brnetOk(['network', 'create', 'tmp', '--subnet', '10.82.0.0/24', '--debug']);
    expect(traced(c.stderr).filter((l) => / nft /.test(l))).toHaveLength(1);
    const r = await sb.brnetOk(['network', 'rm', 'tmp', '--debug']);
    expect(traced(r.stderr).filter((l) => / nft /.test(l))).toHaveLength(1);
    await sb.brnetOk(['port', 'unpublish', 'web', 'app', '8081:81']);
  });

  it("leaves a table of someone else's byte for byte as it was", async () => {
    await sb.sh("nft -f - <<'EOF'\ntable inet admin {\n  chain fwd { type filter hook forward priority 10; policy accept; iifname \"brnet0\" counter accept comment \"managed by brnet team\" }\n}\nEOF");
    const theirs = async () => (await sb.sh('nft list table inet admin')).stdout;
    const before = await theirs();
    await sb.brnetOk(['network', 'create', 'tmp2', '--subnet', '10.83.0.0/24']);
    await sb.brnetOk(['restore']);
    await sb.brnetOk(['network', 'rm', 'tmp2']);
    expect(await theirs()).toBe(before);
    expect((await sb.brnet(['check'])).code).toBe(0);
    await sb.sh('nft delete table inet admin');
  });

  for (const [what, damage] of [
    ['nft flush ruleset', 'nft flush ruleset'],
    ['nft delete table ip brnet', 'nft delete table ip brnet'],
    ['a deleted rule and a deleted map element', "nft -a list chain ip brnet dnat-all | awk '/jump/ {print $NF; exit}' | xargs -r nft delete rule ip brnet dnat-all handle && nft flush map ip brnet fwd-ct"],
  ] as const) {
    it(`${what}: check says so, restore brings traffic back, a second restore changes nothing`, async () => {
      expect((await sb.sh(damage)).code).toBe(0);
      expect(await works(8080)).toBe(false);
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^(missing|leftover|wrong): (IPv4 nftables|nftables table ip brnet)/m);
      await sb.brnetOk(['restore']);
      expect((await sb.brnet(['check'])).code).toBe(0);
      expect(await works(8080)).toBe(true);
      const again = await sb.brnetOk(['restore', '--json', '--debug']);
      expect(again.json().restored).toEqual([]);
      expect(traced(again.stderr).filter((l) => /nft -f/.test(l))).toEqual([]);
    });
  }

  it('a brnet table holding another instance\'s rules is foreign: check names it, changes exit 5', async () => {
    await sb.sh('nft add chain ip brnet intruder && nft add rule ip brnet intruder counter accept comment \\"brnet@deadbeef:theirs\\"');
    const c = await sb.brnet(['check']);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/^foreign: nftables table ip brnet holds rules of brnet instance deadbeef/m);
    expect((await sb.brnet(['restore'])).code).toBe(5);
    await sb.sh('nft flush chain ip brnet intruder && nft delete chain ip brnet intruder');
    expect((await sb.brnet(['check'])).code).toBe(0);
  });
});

describeRoot('live migration between the backends', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
    client = await sb.addOutsideClient();
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.84.0.0/24', '--ipv6', '--subnet', 'fd84::/64']);
    await sb.brnetOk(['network', 'create', 'quiet', '--subnet', '10.85.0.0/24', '--no-icc', '--internal']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '-p', '8080:80']);
    await sb.brnetOk(['endpoint', 'add', 'quiet', 'q1', '--netns', 'q1', '--create-netns']);
    await startEcho(sb, 'app', 'tcp', 80);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('iptables -> nftables -> iptables: traffic works at each end, nothing of the other backend is left, check is clean', async () => {
    expect(await works(8080)).toBe(true);
    expect(await brnetTables()).toEqual([]);
    const dry = await sb.brnetOk(['config', 'set', 'firewall-backend', 'nftables', '--dry-run']);
    expect(dry.stdout).toContain('nft -f -');
    expect(dry.stdout).toContain('iptables-restore --noflush');
    expect(await brnetTables()).toEqual([]);
    await sb.brnetOk(['config', 'set', 'firewall-backend', 'nftables']);
    expect((await sb.brnetOk(['config', 'show', '--json'])).json()['firewall-backend']).toBe('nftables');
    expect(await brnetIptables()).toEqual([]);
    expect(await brnetTables()).toEqual(['table ip brnet', 'table ip6 brnet']);
    expect((await sb.brnet(['check'])).code).toBe(0);
    expect(await works(8080)).toBe(true);
    expect(await sb.ping('app', '10.84.0.1')).toBe(true);
    expect(await sb.ping('q1', client.ip)).toBe(false); // internal stays internal
    await sb.brnetOk(['config', 'set', 'firewall-backend', 'iptables']);
    expect(await brnetTables()).toEqual([]);
    expect((await brnetIptables()).length).toBeGreaterThan(5);
    expect((await sb.brnet(['check'])).code).toBe(0);
    expect(await works(8080)).toBe(true);
  });

  it('leftovers of the backend not in use are found by check and removed by restore', async () => {
    await sb.brnetOk(['config', 'set', 'firewall-backend', 'nftables']);
    const iptablesRules = async () => (await sb.sh('iptables-save')).stdout;
    // An interrupted migration, say: iptables chains of brnet's beside its nftables tables.
    await sb.sh(`iptables -N BRNET-FORWARD && iptables -A BRNET-FORWARD -m comment --comment brnet@${instance()}:web -j ACCEPT && iptables -I FORWARD -m comment --comment brnet@${instance()} -j BRNET-FORWARD`);
    const c = await sb.brnet(['check']);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/^leftover: IPv4 chain filter\/BRNET-FORWARD is not in the state/m);
    await sb.brnetOk(['restore']);
    expect(await iptablesRules()).not.toMatch(/BRNET/);
    expect((await sb.brnet(['check'])).code).toBe(0);
    expect(await works(8080)).toBe(true);
  });

  it('a bad backend name is refused (2) and changes nothing', async () => {
    const r = await sb.brnet(['config', 'set', 'firewall-backend', 'pf']);
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([2, 'brnet: invalid firewall-backend "pf": use iptables or nftables']);
  });
});

describeRoot("the nftables backend under iptables' FORWARD policy DROP", () => {
  beforeAll(async () => {
    sb = await Sandbox.create({ backend: 'nftables' });
    client = await sb.addOutsideClient();
    await sb.sh('iptables -P FORWARD DROP && ip6tables -P FORWARD DROP && iptables -A FORWARD -s 192.0.2.0/24 -j DROP');
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('accepts its own bridges there (two rules per family, by device group) and nothing else; never changes the policy', async () => {
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.86.0.0/24', '--ipv6', '--subnet', 'fd86::/64']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'app', '--create-netns', '-p', '8080:80']);
    await sb.brnetOk(['network', 'create', 'other', '--subnet', '10.87.0.0/24']);
    await startEcho(sb, 'app', 'tcp', 80);
    expect(await works(8080)).toBe(true);
    const ours = (await brnetIptables()).filter((l) => l.startsWith('-A'));
    expect(ours).toHaveLength(4);
    for (const l of ours) expect(l).toMatch(/^-A FORWARD -m devgroup --(src|dst)-group 0x2bad -m comment --comment "brnet@\w{8}:forward-accept" -j ACCEPT$/);
    const save = await sb.iptablesSave(4);
    expect(save).toContain(':FORWARD DROP');
    expect(save).toContain('-A FORWARD -s 192.0.2.0/24 -j DROP');
    expect((await sb.brnet(['check'])).code).toBe(0);
    // brnet's own drops are final: an unpublished port stays closed, the FORWARD accepts notwithstanding.
    expect((await probe(sb, client.ns, 'tcp', '10.86.0.2', 80, { timeoutMs: 800 })).ok).toBe(false);
  });

  it('a flush of FORWARD is found and repaired; the last network takes the accepts with it', async () => {
    await sb.sh('iptables -F FORWARD');
    const c = await sb.brnet(['check']);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain("missing: IPv4 accepts of brnet's bridges in filter/FORWARD (its policy is DROP)");
    await sb.brnetOk(['restore']);
    expect(await works(8080)).toBe(true);
    await sb.brnetOk(['network', 'rm', '--force', 'web', 'other']);
    expect(await brnetIptables()).toEqual([]);
    expect(await sb.iptablesSave(4)).toContain(':FORWARD DROP');
    expect((await sb.brnet(['check'])).code).toBe(0);
  });
});
