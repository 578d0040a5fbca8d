// firewalld hosts (zone brnet, policy brnet-forwarding) and `restore --watch`, which repairs
// after firewalld reloads and restarts and after any flush of brnet's rules.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Firewalld, haveFirewalld, waitFor } from '../helpers/firewalld.ts';
import { BACKENDS, BRNET_BIN, type BackgroundProcess, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

// In CI the firewalld tests always run (it installs firewalld); elsewhere only where it is installed.
const withFirewalld = haveFirewalld || process.env.CI ? describeRoot : describe.skip;

async function bridgeOf(sb: Sandbox, net: string): Promise<string> {
  return (await sb.brnetOk(['network', 'inspect', net, '--json'])).json().bridge;
}

function watcher(sb: Sandbox): BackgroundProcess {
  return sb.spawnBackground([BRNET_BIN, 'restore', '--watch'], { env: sb.brnetEnv() });
}

/** Until the watcher has said it watches (its first restore is done). */
async function watching(w: BackgroundProcess): Promise<void> {
  expect(await waitFor(async () => w.stderr().includes('watching for'), 10_000)).toBe(true);
}

const repairs = (w: BackgroundProcess) => w.stderr().split('\n').filter((l) => l.startsWith('brnet: repaired'));

async function clean(sb: Sandbox): Promise<boolean> {
  return (await sb.brnet(['check'])).code === 0;
}

for (const backend of BACKENDS) {
  withFirewalld(`with firewalld running (${backend} backend)`, () => {
    let sb: Sandbox;
    let fw: Firewalld;
    let bridge: string;
    let client: Awaited<ReturnType<Sandbox['addOutsideClient']>>;
    let stopEcho: () => Promise<void>;

    beforeAll(async () => {
      sb = await Sandbox.create({ backend });
      fw = await Firewalld.start(sb);
      await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.71.0.0/24']);
      await sb.brnetOk(['endpoint', 'add', 'web', 'a', '--netns', 'fa', '--create-netns', '--ip', '10.71.0.10']);
      await sb.brnetOk(['endpoint', 'add', 'web', 'b', '--netns', 'fb', '--create-netns', '--ip', '10.71.0.11', '-p', '8080:80']);
      bridge = await bridgeOf(sb, 'web');
      client = await sb.addOutsideClient();
      const echo = await startEcho(sb, 'fb', 'tcp', 80);
      stopEcho = () => echo.stop();
    });
    afterAll(async () => {
      await stopEcho?.();
      await sb?.destroy();
    });

    const works = async () =>
      (await sb.ping('fa', client.ip)) && (await sb.ping('fa', '10.71.0.11')) && (await probe(sb, client.ns, 'tcp', client.hostIp, 8080, { timeoutMs: 1500 })).ok;

    it('puts the bridge in zone brnet and makes the policy; endpoints reach out and each other, a published port answers', async () => {
      expect(await fw.cmd(`--get-zone-of-interface=${bridge}`)).toBe('brnet');
      expect((await fw.cmd('--permanent', '--zone=brnet', '--list-interfaces')).split(' ')).toContain(bridge);
      expect(await fw.cmd('--zone=brnet', '--get-target', '--permanent')).toBe('ACCEPT');
      expect((await fw.cmd('--get-policies')).split(' ')).toContain('brnet-forwarding');
      const policy = await fw.cmd('--info-policy=brnet-forwarding');
      expect(policy).toMatch(/target: ACCEPT/);
      expect(policy).toMatch(/ingress-zones: ANY/);
      expect(policy).toMatch(/egress-zones: brnet/);
      expect(await works()).toBe(true);
      expect(await clean(sb)).toBe(true);
    });

    it('a bridge taken out of the zone blocks forwarding; check names it, restore puts it back', async () => {
      await fw.cmd('--zone=brnet', `--remove-interface=${bridge}`);
      expect(await sb.ping('fa', client.ip)).toBe(false); // firewalld's forward chain rejects it
      const r = await sb.brnet(['check']);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`missing: bridge ${bridge} in firewalld zone brnet`);
      await sb.brnetOk(['restore']);
      expect(await fw.cmd(`--get-zone-of-interface=${bridge}`)).toBe('brnet');
      expect(await works()).toBe(true);
      expect(await clean(sb)).toBe(true);
    });

    it(`firewall-cmd --reload ${backend === 'iptables' ? 'flushes brnet\'s iptables rules: check reports it, restore repairs' : 'leaves brnet\'s nftables tables alone'}`, async () => {
      await fw.cmd('--reload');
      expect(await fw.cmd(`--get-zone-of-interface=${bridge}`)).toBe('brnet'); // permanent binding
      const r = await sb.brnet(['check']);
      if (backend === 'iptables') {
        expect(r.code).toBe(1);
        expect(r.stdout).toContain('missing: IPv4 jump filter/FORWARD -> BRNET-FORWARD');
        await sb.brnetOk(['restore']);
      } else expect(r.code).toBe(0);
      expect(await works()).toBe(true);
      expect(await clean(sb)).toBe(true);
    });

    it('with restore --watch, traffic works again within 3 s of a reload and of a firewalld restart', async () => {
      const w = watcher(sb);
      try {
        await watching(w);
        const latencies: number[] = [];
        for (let i = 0; i < 3; i++) {
          await fw.cmd('--reload');
          const t = Date.now();
          expect(await waitFor(async () => (await clean(sb)) && (await works()), 3_000)).toBe(true);
          latencies.push(Date.now() - t);
        }
        await fw.stopDaemon();
        await fw.startDaemon();
        const t = Date.now();
        expect(await waitFor(async () => (await clean(sb)) && (await works()), 3_000)).toBe(true);
        latencies.push(Date.now() - t);
        if (backend === 'iptables') expect(repairs(w).length).toBeGreaterThanOrEqual(3); // one per reload at least: each flushes iptables
        expect(w.stderr(), w.stderr()).not.toMatch(/warning: cannot repair/);
        console.log(`firewalld (${backend}): reload → clean and passing after ${latencies.join(', ')} ms`);
      } finally {
        process.kill(w.pid, 'SIGTERM');
        expect(await w.exited).toBe(0);
        await w.kill();
      }
    });

    it('the last network rm takes the bridge out of the zone and removes zone and policy', async () => {
      await stopEcho();
      await sb.brnetOk(['network', 'rm', 'web', '--force']);
      expect(await fw.tryCmd(`--get-zone-of-interface=${bridge}`)).toBeNull();
      expect((await fw.cmd('--get-zones')).split(' ')).not.toContain('brnet');
      expect((await fw.cmd('--permanent', '--get-zones')).split(' ')).not.toContain('brnet');
      expect((await fw.cmd('--get-policies')).split(' ')).not.toContain('brnet-forwarding');
      expect((await fw.cmd('--permanent', '--get-policies')).split(' ')).not.toContain('brnet-forwarding');
      expect(await clean(sb)).toBe(true);
    });
  });
}

for (const backend of BACKENDS) {
  describeRoot(`restore --watch without firewalld (${backend} backend)`, () => {
    let sb: Sandbox;
    let w: BackgroundProcess;
    let client: Awaited<ReturnType<Sandbox['addOutsideClient']>>;
    let stopEcho: () => Promise<void>;

    beforeAll(async () => {
      sb = await Sandbox.create({ backend });
      await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.72.0.0/24']);
      await sb.brnetOk(['endpoint', 'add', 'web', 'srv', '--netns', 'ws', '--create-netns', '-p', '8080:80']);
      client = await sb.addOutsideClient();
      const echo = await startEcho(sb, 'ws', 'tcp', 80);
      stopEcho = () => echo.stop();
      w = watcher(sb);
      await watching(w);
    });
    afterEach(async () => {
      expect(await clean(sb)).toBe(true);
    });
    afterAll(async () => {
      if (w) {
        process.kill(w.pid, 'SIGTERM');
        expect(await w.exited).toBe(0);
        await w.kill();
      }
      await stopEcho?.();
      await sb?.destroy();
    });

    const passes = async () => (await probe(sb, client.ns, 'tcp', client.hostIp, 8080, { timeoutMs: 1500 })).ok;
    const flushes: [string, string][] =
      backend === 'iptables'
        ? [
            ['iptables -F', 'iptables -F'],
            ['iptables -t nat -F', 'iptables -t nat -F'],
            ['nft flush ruleset', 'nft flush ruleset'],
            ['an iptables-restore of an empty ruleset', "printf '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n*nat\\n:PREROUTING ACCEPT [0:0]\\n:INPUT ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore"],
          ]
        : [
            ['nft flush ruleset', 'nft flush ruleset'],
            ['nft delete table ip brnet', 'nft delete table ip brnet'],
          ];

    for (const [what, cmd] of flushes) {
      it(`repairs ${what} within 3 s`, async () => {
        const before = repairs(w).length;
        expect((await sb.sh(cmd)).code).toBe(0);
        const t = Date.now();
        expect(await waitFor(async () => (await clean(sb)) && (await passes()), 3_000)).toBe(true);
        expect(repairs(w).length).toBe(before + 1);
        expect(repairs(w).at(-1)).toMatch(/^brnet: repaired \d+ differences? in \d+ ms \(after .+\): (missing|wrong) /);
        console.log(`watch (${backend}): ${what} → clean and passing after ${Date.now() - t} ms`);
      });
    }

    it("another call's network create and rm are not repairs", async () => {
      const before = w.stderr();
      await sb.brnetOk(['network', 'create', 'other', '--subnet', '10.73.0.0/24']);
      await sb.brnetOk(['network', 'rm', 'other']);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(w.stderr()).toBe(before);
    });
  });
}

describeRoot('restore --watch refuses what it cannot do', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('--dry-run and batch lines are usage errors (2)', async () => {
    const r = await sb.brnet(['restore', '--watch', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^brnet: --watch and --dry-run/);
    const b = await sb.brnet(['batch', '-'], { input: 'restore --watch\n' });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/cannot run inside a batch/);
  });

  it('a first restore that fails ends the watch with its error, leaving nothing running', async () => {
    const bad = await Sandbox.create();
    try {
      await bad.sh(`printf '{"version": 1, "networks": 7}' > ${bad.stateDir}/state.json`);
      const r = await bad.brnet(['restore', '--watch'], { timeoutMs: 10_000 });
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/^brnet: .*state/);
      // No `nft monitor` left in this sandbox's network namespace (pgrep sees the whole machine).
      const left = await bad.sh('for p in $(pgrep -x nft); do [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ] && echo $p; done; true');
      expect(left.stdout.trim()).toBe('');
    } finally {
      await bad.destroy();
    }
  });

  it('with nothing to restore it watches, and SIGINT ends it with 0', async () => {
    const w = watcher(sb);
    await watching(w);
    process.kill(w.pid, 'SIGINT');
    expect(await w.exited).toBe(0);
    await w.kill();
  });
});
