// Concurrency, crashes and damaged state files: brnet must never lose or leak anything.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCidr, overlaps } from '../../src/net/ipam.ts';
import { BRNET_BIN, Sandbox, describeRoot } from '../helpers/sandbox.ts';

let sb: Sandbox;
const stateFile = () => join(sb.stateDir, 'state.json');

/** Every device and chain carrying brnet's marks is known to the state, and check is clean. */
async function assertConverged() {
  const check = await sb.brnet(['check']);
  expect(check.stdout + check.stderr).toBe(check.code === 0 ? '' : 'not clean');
  const state = JSON.parse(existsSync(stateFile()) ? readFileSync(stateFile(), 'utf8') : '{"networks":[]}');
  const known = new Set<string>(state.networks.flatMap((n: any) => [n.bridge, ...n.endpoints.map((e: any) => e.hostIfname)]));
  for (const l of await sb.ipJson(['link'])) if (/^brnet[@:]/.test(l.ifalias ?? '')) expect(known).toContain(l.ifname);
  const ids = new Set(state.networks.map((n: any) => n.id.slice(0, 12)));
  for (const f of [4, 6] as const) {
    for (const m of (await sb.iptablesSave(f)).matchAll(/^:BRNET-\w+-([0-9a-f]{12}) /gm)) expect(ids).toContain(m[1]);
  }
}

describeRoot('reliability: parallel calls', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('10 parallel network creates without --subnet get 10 distinct, non-overlapping subnets', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sb.brnet(['network', 'create', `p${i}`, '--json'], { timeoutMs: 60_000 })));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const subnets = results.map((r) => r.json().ipv4.subnet as string);
    expect(new Set(subnets).size).toBe(10);
    for (let i = 0; i < subnets.length; i++)
      for (let j = i + 1; j < subnets.length; j++) expect(overlaps(parseCidr(subnets[i]!), parseCidr(subnets[j]!))).toBe(false);
    expect(JSON.parse(readFileSync(stateFile(), 'utf8')).networks).toHaveLength(10);
    await assertConverged();
  });

  it('20 parallel endpoint adds into one network get 20 distinct addresses and veths', async () => {
    await sb.brnetOk(['network', 'create', 'par', '--subnet', '10.75.0.0/24']);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sb.brnet(['endpoint', 'add', 'par', `e${i}`, '--netns', `pn${i}`, '--create-netns', '--json'], { timeoutMs: 60_000 })),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(new Set(results.map((r) => r.json().ipv4)).size).toBe(20);
    const bridge = (await sb.brnetOk(['network', 'inspect', 'par', '--json'])).json().bridge;
    expect((await sb.ipJson(['link', 'show', 'master', bridge])).length).toBe(20);
    await assertConverged();
    await sb.brnetOk(['network', 'rm', '--force', 'par']);
  });

  it('parallel removes all succeed and leave nothing', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sb.brnet(['network', 'rm', `p${i}`], { timeoutMs: 60_000 })));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(await sb.iptablesSave(4)).not.toMatch(/BRNET/);
    await assertConverged();
  });
});

/** Starts `brnet args(i)`, kills it with SIGKILL after each delay, then restore must converge. */
async function killAndRestore(delays: number[], args: (i: number) => string[]) {
  for (const [i, delay] of delays.entries()) {
    const p = sb.spawnBackground([BRNET_BIN, ...args(i)], { env: sb.brnetEnv() });
    await new Promise((r) => setTimeout(r, delay));
    await p.kill();
    const r = await sb.brnet(['restore'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    await assertConverged();
  }
}

describeRoot('reliability: kill -9 at any moment', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('endpoint add and port publish killed at varied delays are repaired by restore', async () => {
    await sb.brnetOk(['network', 'create', 'kn', '--subnet', '10.76.0.0/24', '--ipv6', '--subnet', 'fd76::/64']);
    const delays = [0, 10, 25, 40, 55, 70, 90, 110, 140, 180];
    await killAndRestore(delays, (i) => ['endpoint', 'add', 'kn', `ke${i}`, '--netns', `kns${i}`, '--create-netns', '-p', `${42000 + i}:80`]);
    await sb.brnetOk(['endpoint', 'add', 'kn', 'pub', '--netns', 'pubns', '--create-netns']);
    await killAndRestore(delays, (i) => ['port', 'publish', 'kn', 'pub', `${43000 + i}:80`, `${44000 + i}:53/udp`]);
  });

  it('network create killed at varied delays is repaired by restore', async () => {
    await killAndRestore([0, 5, 15, 30, 45, 60, 80, 100, 130, 170], (i) => ['network', 'create', `k${i}`, '--ipv6']);
  });
});

describeRoot('reliability: state file', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('keeps the previous version as state.json.bak, mode 0600', async () => {
    await sb.brnetOk(['network', 'create', 'a', '--subnet', '10.71.0.0/24']);
    await sb.brnetOk(['network', 'create', 'b', '--subnet', '10.72.0.0/24']);
    const bak = JSON.parse(readFileSync(`${stateFile()}.bak`, 'utf8'));
    expect(bak.networks.map((n: any) => n.name)).toEqual(['a']);
    const { statSync } = await import('node:fs');
    expect(statSync(stateFile()).mode & 0o777).toBe(0o600);
  });

  it('a symlink planted as state.json, or a state dir others control, is refused (5) and nothing is written through it', async () => {
    const { chmodSync, chownSync, lstatSync, readdirSync, symlinkSync, unlinkSync } = await import('node:fs');
    const good = readFileSync(stateFile(), 'utf8');
    const target = join(mkdtempSync(join(tmpdir(), 'brnet-target-')), 'victim');
    writeFileSync(target, good);
    unlinkSync(stateFile());
    symlinkSync(target, stateFile());
    const links = (await sb.sh('ip -br link')).stdout;
    for (const args of [['network', 'create', 'via-link', '--subnet', '10.76.0.0/24'], ['restore'], ['network', 'ls']]) {
      const r = await sb.brnet(args);
      expect(r.code, args.join(' ')).toBe(5);
      expect(r.stderr).toMatch(/state\.json is a symlink/);
    }
    expect(readFileSync(target, 'utf8')).toBe(good);
    expect(lstatSync(stateFile()).isSymbolicLink()).toBe(true);
    expect((await sb.sh('ip -br link')).stdout).toBe(links);
    unlinkSync(stateFile());
    writeFileSync(stateFile(), good, { mode: 0o600 });
    // Writable by others, or another user's: refused with the fix.
    chmodSync(sb.stateDir, 0o777);
    const open = await sb.brnet(['network', 'create', 'via-link', '--subnet', '10.76.0.0/24']);
    expect([open.code, open.stderr]).toEqual([5, expect.stringMatching(/is writable by anyone\nhint: chown 0 .* && chmod 0700 /)]);
    chmodSync(sb.stateDir, 0o700);
    chownSync(stateFile(), 65534, 65534);
    const theirs = await sb.brnet(['network', 'ls']);
    expect([theirs.code, theirs.stderr]).toEqual([5, expect.stringMatching(/state\.json belongs to uid 65534, not to the user running brnet \(uid 0\)/)]);
    chownSync(stateFile(), 0, 0);
    expect(readFileSync(stateFile(), 'utf8')).toBe(good);
    expect(readdirSync(sb.stateDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await sb.brnetOk(['network', 'ls']);
    rmSync(dirname(target), { recursive: true, force: true });
  });

  it('a planted state whose values would be words of ip -batch is refused before anything runs', async () => {
    const good = readFileSync(stateFile(), 'utf8');
    const state = JSON.parse(good);
    expect(state.networks.length).toBeGreaterThan(0);
    state.networks[0].bridge = 'brz\nnetns add pwned\n#';
    writeFileSync(stateFile(), JSON.stringify(state));
    for (const args of [['restore'], ['check'], ['network', 'ls']]) {
      const r = await sb.brnet(args);
      expect(r.code, args.join(' ')).toBe(5);
      expect(r.stderr).toMatch(/state file .* is invalid: networks\.0\.bridge: expected an interface name/);
    }
    expect((await sb.sh('ip netns list')).stdout).not.toContain('pwned');
    writeFileSync(stateFile(), good);
  });

  it('every field that reaches ip -batch, iptables-restore or nsenter is checked: a planted value is refused (5), nothing runs', async () => {
    await sb.brnetOk(['endpoint', 'add', 'a', 'victim', '--netns', 'victimns', '--create-netns', '-p', '8099:80']);
    const good = readFileSync(stateFile(), 'utf8');
    const evil = 'x\nnetns add pwned\n#';
    const plants: [string, (s: any) => void][] = [
      ['instance', (s) => (s.instance = 'zz" -j ACCEPT')],
      ['networks.0.ifacePrefix', (s) => (s.networks[0].ifacePrefix = evil)],
      ['networks.0.trustedInterfaces.0', (s) => (s.networks[0].trustedInterfaces = ['+'])],
      ['networks.0.keepAddresses.0', (s) => (s.networks[0].keepAddresses = [`10.0.0.1/24 ${evil}`])],
      ['networks.0.snatIpv4', (s) => (s.networks[0].snatIpv4 = '1.2.3.4 -j ACCEPT')],
      ['networks.0.bridgeMac', (s) => (s.networks[0].bridgeMac = `02:00:00:00:00:01 ${evil}`)],
      ['networks.0.endpoints.0.ifname', (s) => (s.networks[0].endpoints[0].ifname = 'eth0 up\nlink del lo')],
      ['networks.0.endpoints.0.hostIfname', (s) => (s.networks[0].endpoints[0].hostIfname = '-force')],
      ['networks.0.endpoints.0.netnsPath', (s) => (s.networks[0].endpoints[0].netnsPath = '/run/netns/x -- sh -c id')],
      ['networks.0.endpoints.0.netns', (s) => (s.networks[0].endpoints[0].netns = 'a b')],
      ['networks.0.endpoints.0.mac', (s) => (s.networks[0].endpoints[0].mac = `02:00:00:00:00:02\n${evil}`)],
      ['networks.0.endpoints.0.ipv4', (s) => (s.networks[0].endpoints[0].ipv4 = `10.71.0.5/24 ${evil}`)],
      ['networks.0.endpoints.0.netnsIdentity.token', (s) => (s.networks[0].endpoints[0].netnsIdentity.token = 'feed c0de')],
      ['networks.0.endpoints.0.ports.0.hostIp', (s) => (s.networks[0].endpoints[0].ports[0].hostIp = '0.0.0.0 -j ACCEPT')],
      ['networks.0.endpoints.0.ports.0.hostPort', (s) => (s.networks[0].endpoints[0].ports[0].hostPort = '80 -j ACCEPT')],
    ];
    const before = { links: (await sb.sh('ip -br link')).stdout, v4: await sb.iptablesSave(4) };
    for (const [path, plant] of plants) {
      const s = JSON.parse(good);
      plant(s);
      writeFileSync(stateFile(), JSON.stringify(s));
      for (const args of [['restore'], ['check'], ['endpoint', 'rm', 'a', 'victim']]) {
        const r = await sb.brnet(args);
        expect(r.code, `${path}: ${args.join(' ')}: ${r.stderr}`).toBe(5);
        expect(r.stderr).toContain(`is invalid: ${path}:`);
      }
    }
    expect((await sb.sh('ip netns list')).stdout).not.toContain('pwned');
    expect((await sb.sh('ip -br link')).stdout).toBe(before.links);
    expect(await sb.iptablesSave(4)).toBe(before.v4);
    writeFileSync(stateFile(), good);
    await sb.brnetOk(['endpoint', 'rm', 'a', 'victim']);
  });

  it('a corrupt state file is never overwritten: exit 5 naming the file', async () => {
    const good = readFileSync(stateFile(), 'utf8');
    for (const garbage of ['{"version": 1, "networks": [', '[]', '{"version":1,"config":{},"networks":[{"name":5}]}', '']) {
      writeFileSync(stateFile(), garbage);
      for (const args of [['network', 'ls'], ['network', 'create', 'c'], ['check']]) {
        const r = await sb.brnet(args);
        expect(r.code, `${garbage} ${args}`).toBe(5);
        expect(r.stderr).toContain(stateFile());
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      expect(readFileSync(stateFile(), 'utf8')).toBe(garbage);
    }
    writeFileSync(stateFile(), good);
  });

  it('a state file changed in place, even to the same size, is validated in full again', async () => {
    // An earlier version's identity record, which let a file edited in place skip validation.
    writeFileSync(`${stateFile()}.ok`, '0.1.0 1 1 1\n');
    await sb.brnetOk(['network', 'create', 'c', '--subnet', '10.77.0.0/24']);
    expect(existsSync(`${stateFile()}.ok`)).toBe(false);
    const good = readFileSync(stateFile(), 'utf8');
    const bad = good.replace('"icc":true', '"icc":1234');
    expect(bad.length).toBe(good.length);
    writeFileSync(stateFile(), bad);
    const r = await sb.brnet(['network', 'ls']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/state file .* is invalid: networks\.\d+\.icc/);
    writeFileSync(stateFile(), good);
    expect((await sb.brnet(['network', 'ls', '-q'])).code).toBe(0);
    await sb.brnetOk(['network', 'rm', 'c']);
  });

  it('a state file from a newer brnet is refused; one without a version is migrated', async () => {
    const good = JSON.parse(readFileSync(stateFile(), 'utf8'));
    writeFileSync(stateFile(), JSON.stringify({ ...good, version: 99 }));
    const r = await sb.brnet(['network', 'ls']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/version 99, newer than this brnet/);
    const { version: _v, config: _c, ...v0 } = good;
    writeFileSync(stateFile(), JSON.stringify(v0));
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout.trim().split('\n')).toEqual(['a', 'b']);
    await sb.brnetOk(['network', 'rm', 'b']);
    const migrated = JSON.parse(readFileSync(stateFile(), 'utf8'));
    expect(migrated.version).toBe(1);
    expect(migrated.config.iptables).toBe(true);
  });

  it('a lock held by another process makes a call wait, then give up with 5', async () => {
    const { mkdirSync, rmSync, utimesSync } = await import('node:fs');
    const lock = join(sb.stateDir, 'state.lock');
    mkdirSync(lock);
    const keepFresh = setInterval(() => utimesSync(lock, new Date(), new Date()), 300);
    try {
      const r = await sb.brnet(['network', 'create', 'late'], { env: { BRNET_LOCK_TIMEOUT_MS: '1500' } });
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/another brnet process holds .*state\.lock/);
    } finally {
      clearInterval(keepFresh);
      rmSync(lock, { recursive: true, force: true });
    }
    expect((await sb.brnet(['network', 'inspect', 'late'])).code).toBe(3);
  });
});

describeRoot('reliability: rollback', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('a failure at the last step (state write: disk full) undoes every kernel change', async () => {
    // A tiny private filesystem as the state directory, filled up after the first network.
    await sb.sh(`mount -t tmpfs -o size=64k,mode=0700 tmpfs ${sb.stateDir}`);
    await sb.brnetOk(['network', 'create', 'first', '--subnet', '10.73.0.0/24']);
    // Rules only: the nft backend may create empty tables on first use, which is not a change.
    const rules = (t: string) => t.split('\n').filter((l) => l.startsWith('-A ') || l.startsWith(':BRNET')).join('\n');
    const before = {
      links: (await sb.sh('ip -br link')).stdout,
      v4: rules(await sb.iptablesSave(4)),
      v6: rules(await sb.iptablesSave(6)),
      state: (await sb.sh(`cat ${sb.stateDir}/state.json`)).stdout,
    };
    // The previous version kept as .bak would free its page when replaced: filled up too.
    await sb.sh(`rm -f ${sb.stateDir}/state.json.bak`);
    await sb.sh(`dd if=/dev/zero of=${sb.stateDir}/filler bs=4k count=64 2>/dev/null; true`);
    const r = await sb.brnet(['network', 'create', 'second', '--ipv6', '--subnet', '10.74.0.0/24']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^brnet: cannot create network second: cannot write state file .*state\.json/);
    expect((await sb.sh('ip -br link')).stdout).toBe(before.links);
    expect(rules(await sb.iptablesSave(4))).toBe(before.v4);
    expect(rules(await sb.iptablesSave(6))).toBe(before.v6);
    expect((await sb.sh(`cat ${sb.stateDir}/state.json`)).stdout).toBe(before.state);
    await sb.sh(`rm -f ${sb.stateDir}/filler`);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });

  it('network rm whose firewall commit fails builds the bridge it deleted meanwhile again', async () => {
    // The rules and the bridge go at the same time; an iptables-restore that refuses every
    // deletion makes the rules fail after (or while) the bridge is deleted.
    await sb.brnetOk(['network', 'create', 'keepme', '--ipv6', '--subnet', '10.75.0.0/24', '--mtu', '1400']);
    const fake = mkdtempSync(join(tmpdir(), 'brnet-fake-'));
    try {
      const real = (await sb.sh('command -v iptables-restore')).stdout.trim();
      writeFileSync(
        join(fake, 'iptables-restore'),
        `#!/bin/sh\nin=$(cat)\ncase "$in" in *"-X BRNET"*|*"-D BRNET"*) echo "iptables-restore: line 2 failed: injected" >&2; exit 1;; esac\nprintf '%s\\n' "$in" | exec ${real} "$@"\n`,
      );
      chmodSync(join(fake, 'iptables-restore'), 0o755);
      const links = async () => (await sb.ipJson(['-d', 'addr', 'show'])).map((l: any) => [l.ifname, l.address, l.mtu, l.ifalias, l.operstate === 'DOWN' ? 'down' : 'up', l.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`).sort()]);
      // Read inside the sandbox: the test before mounts a tmpfs on the state directory there.
      const state = async () => (await sb.sh(`cat ${sb.stateDir}/state.json`)).stdout;
      const before = { links: await links(), state: await state() };
      const r = await sb.brnet(['network', 'rm', 'keepme', '--debug'], { env: { PATH: `${fake}:${process.env.PATH}` } });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/injected/);
      expect(r.stderr).toMatch(/\+ ip -batch - <<1 lines/); // the bridge deletion ran
      expect(await links()).toEqual(before.links);
      expect(await state()).toBe(before.state);
      expect((await sb.brnet(['check'])).code).toBe(0);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
    await sb.brnetOk(['network', 'rm', 'keepme']);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });
});
