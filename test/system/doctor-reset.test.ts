// `brnet doctor` (what it finds on the host, and its exit status) and `brnet reset` (nothing
// of brnet's left, sysctls back as they were), each inside private sandboxes.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { BACKENDS, BRNET_BIN, Sandbox, describeRoot, shellQuote } from '../helpers/sandbox.ts';

const stateText = (sb: Sandbox) => {
  try {
    return readFileSync(join(sb.stateDir, 'state.json'), 'utf8');
  } catch {
    return '';
  }
};

const sysctl = async (sb: Sandbox, key: string) => (await sb.sh(`cat /proc/sys/${key}`)).stdout.trim();

/** Everything brnet could leave behind: devices with its mark, bridges, veths, namespaces, rules, tables. */
async function brnetObjects(sb: Sandbox) {
  const links = (await sb.ipJson(['-d', 'link'])) as any[];
  const nft = (await sb.sh('nft list ruleset 2>/dev/null; true')).stdout;
  return {
    marked: links.filter((l) => String(l.ifalias ?? '').startsWith('brnet')).map((l) => l.ifname),
    bridges: links.filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => l.ifname),
    veths: links.filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname),
    netns: (await sb.sh('ls /run/netns')).stdout.split(/\s+/).filter(Boolean),
    iptables: [await sb.iptablesSave(4), await sb.iptablesSave(6)].join('\n').split('\n').filter((l) => /brnet|BRNET/.test(l)),
    nft: nft.split('\n').filter((l) => /brnet|BRNET/.test(l)),
  };
}

/** `brnet ARGS` on a pseudo-terminal (script(1)), with `answer` typed in; its output merged. */
async function onTerminal(sb: Sandbox, args: string[], answer: string) {
  const env = `env NODE_ENV=production NO_COLOR=1 BRNET_STATE_DIR=${shellQuote(sb.stateDir)}`;
  const cmd = `${env} ${shellQuote(BRNET_BIN)} ${args.map(shellQuote).join(' ')}`;
  return sb.sh(`printf ${shellQuote(`${answer}\n`)} | script -qec ${shellQuote(cmd)} /dev/null`, { timeoutMs: 20_000 });
}

/** All a command could change, for "nothing changed". */
async function snapshot(sb: Sandbox) {
  return {
    links: ((await sb.ipJson(['-d', 'addr'])) as any[]).map((l) => [l.ifname, l.ifalias, l.master, (l.addr_info ?? []).map((a: any) => a.local)]),
    rules: `${await sb.iptablesSave(4)}\n${await sb.iptablesSave(6)}\n${(await sb.sh('nft list ruleset 2>/dev/null; true')).stdout.replace(/counter packets \d+ bytes \d+/g, 'counter')}`,
    netns: (await sb.sh('ls /run/netns')).stdout,
    forward: [await sysctl(sb, 'net/ipv4/ip_forward'), await sysctl(sb, 'net/ipv6/conf/all/forwarding')],
    state: stateText(sb),
  };
}

describeRoot('doctor', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });
  afterEach(async () => {
    chmodSync(sb.stateDir, 0o700);
    await sb.sh('command -v iptables-legacy >/dev/null && iptables-legacy -P FORWARD ACCEPT; true');
  });

  it('a clean sandbox: exit 0, every finding with a severity, the JSON shape as documented', async () => {
    const r = await sb.brnet(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok {5}bridge devices \(bridge\): loaded$/m);
    const j = (await sb.brnetOk(['doctor', '--json'])).json();
    expect(j.ok).toBe(true);
    const ids = j.findings.map((f: any) => f.id);
    for (const id of ['kernel.bridge', 'kernel.veth', 'kernel.br_netfilter', 'kernel.nf_tables', 'kernel.conntrack', 'kernel.sctp', 'iptables.variant', 'iptables.other-variant', 'firewall.backend', 'rootless', 'state-dir', 'drift']) {
      expect(ids).toContain(id);
    }
    for (const f of j.findings) {
      expect(['ok', 'info', 'warn', 'error']).toContain(f.severity);
      expect(typeof f.message).toBe('string');
      expect(f.hint === null || typeof f.hint === 'string').toBe(true);
      expect(f.severity).not.toBe('error');
    }
    expect(j.findings.find((f: any) => f.id === 'drift').severity).toBe('ok');
  });

  it('a FORWARD policy of DROP in iptables-legacy, beside iptables-nft: exit 1 naming it; back to ACCEPT: 0', async () => {
    expect((await sb.sh('command -v iptables-legacy')).code, 'iptables-legacy (Debian package iptables) in the sandbox').toBe(0);
    expect((await sb.sh('iptables -V')).stdout).toContain('nf_tables');
    expect((await sb.sh('iptables-legacy -P FORWARD DROP')).code).toBe(0);
    const r = await sb.brnet(['doctor']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^error {2}iptables-legacy: IPv4 filter\/FORWARD policy DROP/m);
    expect(r.stdout).toContain('hint: if nothing uses iptables-legacy any more: iptables-legacy -P FORWARD ACCEPT');
    expect(r.stderr).toMatch(/^brnet: 1 problem blocks brnet on this host: iptables-legacy: IPv4 filter\/FORWARD policy DROP/);
    const j = await sb.brnet(['doctor', '--json']);
    expect(j.code).toBe(1);
    const report = j.json();
    expect(report.ok).toBe(false);
    expect(report.findings.filter((f: any) => f.severity === 'error').map((f: any) => f.id)).toEqual(['iptables.other-variant']);
    expect(JSON.parse(j.stderr).error.exitCode).toBe(1);
    await sb.sh('iptables-legacy -P FORWARD ACCEPT');
    expect((await sb.brnet(['doctor'])).code).toBe(0);
  });

  it('a state dir writable by anyone: exit 1 naming it, with the fix', async () => {
    chmodSync(sb.stateDir, 0o777);
    const r = await sb.brnet(['doctor']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`error  state dir ${sb.stateDir}: ${sb.stateDir} is writable by anyone`);
    expect(r.stdout).toContain(`hint: chown 0 ${sb.stateDir} && chmod 0700 ${sb.stateDir}`);
    chmodSync(sb.stateDir, 0o700);
    expect((await sb.brnet(['doctor'])).code).toBe(0);
  });

  it('on a terminal, y goes on', async () => {
    await sb.brnetOk(['network', 'create', 'asked', '--subnet', '10.78.0.0/24']);
    const r = await onTerminal(sb, ['reset'], 'y');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('removed network asked');
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('');
    await sb.sh('echo 0 > /proc/sys/net/ipv4/ip_forward');
  });

  it('reset of a state older than the sysctl record says which values it cannot put back', async () => {
    await sb.sh('echo 0 > /proc/sys/net/ipv4/ip_forward');
    await sb.brnetOk(['network', 'create', 'old', '--subnet', '10.79.0.0/24']);
    expect(await sysctl(sb, 'net/ipv4/ip_forward')).toBe('1');
    // As an older brnet wrote it: no record of sysctls.
    const file = join(sb.stateDir, 'state.json');
    const old = JSON.parse(readFileSync(file, 'utf8'));
    expect(old.sysctls.changed['net/ipv4/ip_forward']).toEqual({ before: '0', set: '1' });
    delete old.sysctls;
    writeFileSync(file, JSON.stringify(old), { mode: 0o600 });
    const r = await sb.brnet(['reset', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('removed network old');
    expect(r.stderr).toContain('brnet: warning: net.ipv4.ip_forward=1 possibly set by an older brnet, which did not record the value before: left as it is');
    expect(await sysctl(sb, 'net/ipv4/ip_forward')).toBe('1');
    expect((await brnetObjects(sb)).bridges).toEqual([]);
    // From now on recorded: a second reset has nothing to say.
    const again = await sb.brnet(['reset', '--yes']);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    await sb.sh('echo 0 > /proc/sys/net/ipv4/ip_forward');
  });
});

for (const backend of BACKENDS) {
  describeRoot(`reset (${backend})`, () => {
    let sb: Sandbox;
    beforeAll(async () => {
      sb = await Sandbox.create({ backend });
      await sb.sh('echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv6/conf/all/forwarding');
      await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.71.0.0/24']);
      await sb.brnetOk(['network', 'create', 'dual', '--ipv6', '--subnet', 'fd71::/64', '--subnet', '10.72.0.0/24', '--no-icc']);
      await sb.brnetOk(['endpoint', 'add', 'web', 'a', '--netns', 'nsa', '--create-netns', '-p', '8080:80', '-p', '127.0.0.1:8081:81/udp']);
      await sb.brnetOk(['endpoint', 'add', 'dual', 'b', '--netns', 'nsb', '--create-netns', '-p', '8443:443']);
      await sb.brnetOk(['endpoint', 'add', 'web', 'b', '--netns', 'nsb']);
    });
    afterAll(async () => {
      await sb?.destroy();
    });

    it('brnet has set ip_forward and made bridges, veths, namespaces and rules', async () => {
      expect(await sysctl(sb, 'net/ipv4/ip_forward')).toBe('1');
      expect(await sysctl(sb, 'net/ipv6/conf/all/forwarding')).toBe('1');
      const o = await brnetObjects(sb);
      expect(o.bridges.length).toBe(2);
      expect(o.veths.length).toBe(3);
      expect(o.netns.sort()).toEqual(['nsa', 'nsb']);
      expect(backend === 'iptables' ? o.iptables.length : o.nft.length).toBeGreaterThan(0);
    });

    it('without --yes and without a terminal: exit 2, nothing changed', async () => {
      const before = await snapshot(sb);
      const r = await sb.brnet(['reset']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^brnet: reset removes every network, endpoint and rule of brnet's: it needs --yes when not run on a terminal\nhint: /);
      expect(await snapshot(sb)).toEqual(before);
    });

    it('on a terminal it asks, and anything but y changes nothing (exit 2)', async () => {
      const before = await snapshot(sb);
      const r = await onTerminal(sb, ['reset'], 'n');
      expect(r.code, r.stdout).toBe(2);
      expect(r.stdout).toContain('and put back the sysctls it changed? [y/N]');
      expect(r.stdout).toContain('brnet: reset not confirmed: nothing changed');
      expect(await snapshot(sb)).toEqual(before);
    });

    it('--dry-run prints the plan and changes nothing', async () => {
      const before = await snapshot(sb);
      const r = await sb.brnetOk(['reset', '--dry-run']);
      expect(r.stdout).toContain('sysctl -w net.ipv4.ip_forward=0');
      expect(r.stdout).toContain('sysctl -w net.ipv6.conf.all.forwarding=0');
      expect(r.stdout).toMatch(/netns del nsa/);
      expect(r.stdout).toMatch(backend === 'iptables' ? /iptables-restore --noflush/ : /nft/);
      expect(await snapshot(sb)).toEqual(before);
    });

    it('reset --yes leaves nothing of brnet\'s, puts ip_forward back, and a second reset changes nothing', async () => {
      const r = await sb.brnet(['reset', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('removed network web');
      expect(r.stdout).toContain('removed endpoint dual/b');
      expect(r.stdout).toContain('reverted net.ipv4.ip_forward=0');
      expect(await brnetObjects(sb)).toEqual({ marked: [], bridges: [], veths: [], netns: [], iptables: [], nft: [] });
      expect(await sysctl(sb, 'net/ipv4/ip_forward')).toBe('0');
      expect(await sysctl(sb, 'net/ipv6/conf/all/forwarding')).toBe('0');
      expect((await sb.brnetOk(['network', 'ls', '--json'])).json()).toEqual([]);
      expect((await sb.brnet(['check'])).code).toBe(0);
      const state = JSON.parse(stateText(sb));
      expect(state.sysctls).toEqual({ changed: {}, incomplete: false });
      expect(state.instance).toMatch(/^[0-9a-f]{8}$/);
      expect(state.config.firewallBackend).toBe(backend);

      const before = await snapshot(sb);
      const again = await sb.brnet(['reset', '--yes', '--json']);
      expect(again.code).toBe(0);
      expect(again.json()).toEqual({ networks: [], endpoints: [], leftovers: [], reverted: [], kept: [] });
      expect(await snapshot(sb)).toEqual(before);
    });
  });
}
