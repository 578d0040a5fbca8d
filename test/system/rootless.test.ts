// Rootless mode: brnet run by an unprivileged user in user, network and mount namespaces of
// its own. The sandbox plays the real host; the user is a throwaway one of the sandbox
// (test/helpers/rootless.ts).
import { afterEach, expect, it } from 'vitest';
import { type RootlessUser, type UserNamespaces, addUser, startRootless, unshareAsUser } from '../helpers/rootless.ts';
import { probe } from '../helpers/traffic.ts';
import { BRNET_BIN, Sandbox, describeRoot } from '../helpers/sandbox.ts';

let sb: Sandbox | undefined;

/** A TCP echo server on port 80, run as the user inside the endpoint's namespace. */
const ECHO = "require('node:net').createServer((s) => s.on('error', () => {}).pipe(s)).listen(80)";

afterEach(async () => {
  await sb?.destroy();
  sb = undefined;
});

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
};

/** Files the user owns on the sandbox host outside its runtime dir: there should be none. */
async function writtenElsewhere(user: RootlessUser): Promise<string[]> {
  const r = await sb!.sh(`find /tmp /var/tmp /var/lib /dev/shm /run /etc -xdev -user ${user.uid} -not -path '${user.runtimeDir}' -not -path '${user.runtimeDir}/*' 2>/dev/null; true`);
  return r.stdout.split('\n').filter(Boolean);
}

describeRoot('rootless under unshare -rnm', () => {
  it('two endpoints in namespaces of its own reach each other; state and namespaces under $XDG_RUNTIME_DIR/brnet', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { subids: false });
    const ns: UserNamespaces = await unshareAsUser(sb, user);
    const before = (await sb.sh(`ls -A ${sb.stateDir} /run/netns`)).stdout;

    ok(await ns.brnet(['network', 'create', 'web', '--subnet', '10.77.0.0/24']), 'network create');
    ok(await ns.brnet(['endpoint', 'add', 'web', 'a', '--netns', 'a', '--create-netns']), 'endpoint add a');
    ok(await ns.brnet(['endpoint', 'add', 'web', 'b', '--netns', 'b', '--create-netns']), 'endpoint add b');
    const nsDir = `${user.runtimeDir}/brnet/netns`;
    const state = JSON.parse(ok(await sb.sh(`cat ${user.runtimeDir}/brnet/state.json`), 'cat state').stdout);
    expect(state.networks[0].endpoints.map((e: any) => e.netnsPath)).toEqual([`${nsDir}/a`, `${nsDir}/b`]);

    const ping = await ns.exec(['nsenter', `--net=${nsDir}/a`, '--', 'ping', '-n', '-q', '-c', '1', '-W', '2', '10.77.0.3'], { timeoutMs: 8_000 });
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);

    const check = await ns.brnet(['check']);
    expect(check.code, check.stderr + check.stdout).toBe(0);

    // The state is the user's, in its runtime dir; nothing of brnet's anywhere else.
    const st = ok(await sb.sh(`stat -c '%u %a' ${user.runtimeDir}/brnet ${user.runtimeDir}/brnet/state.json`), 'stat');
    expect(st.stdout.trim().split('\n')).toEqual([`${user.uid} 700`, `${user.uid} 600`]);
    expect((await sb.sh(`ls ${nsDir}`)).stdout.split(/\s+/).filter(Boolean).sort()).toEqual(['a', 'b']);
    expect(await writtenElsewhere(user)).toEqual([]);
    expect((await sb.sh(`ls -A ${sb.stateDir} /run/netns`)).stdout).toBe(before);
    expect((await sb.sh('test -e /var/lib/brnet/state.json && echo yes || echo no')).stdout.trim()).toBe('no');

    // Removing the endpoints deletes the namespaces brnet made (unmounted and unlinked).
    ok(await ns.brnet(['endpoint', 'rm', 'web', 'a', 'b']), 'endpoint rm');
    expect((await sb.sh(`ls -A ${nsDir}`)).stdout.trim()).toBe('');
    expect((await ns.sh(`grep -c ' ${nsDir}/' /proc/self/mountinfo || true`)).stdout.trim()).toBe('0');
    ok(await ns.brnet(['network', 'rm', 'web']), 'network rm');
    expect((await ns.brnet(['check'])).code).toBe(0);
  }, 60_000);

  it('after its namespaces end, restore in new ones brings the network and the namespaces back', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { subids: false });
    const first = await unshareAsUser(sb, user);
    ok(await first.brnet(['network', 'create', 'web', '--subnet', '10.81.0.0/24']), 'network create');
    ok(await first.brnet(['endpoint', 'add', 'web', 'a', '--netns', 'a', '--create-netns']), 'endpoint add a');
    ok(await first.brnet(['endpoint', 'add', 'web', 'b', '--netns', 'b', '--create-netns']), 'endpoint add b');
    await first.holder.kill(); // the user, network and mount namespaces end: as a reboot for them

    const again = await unshareAsUser(sb, user);
    const drift = await again.brnet(['check']);
    expect(drift.code, drift.stderr).toBe(1);
    expect(drift.stdout).toMatch(/namespace a of endpoint web\/a/);
    ok(await again.brnet(['restore']), 'restore');
    expect((await again.brnet(['check'])).code).toBe(0);
    const nsDir = `${user.runtimeDir}/brnet/netns`;
    const ping = await again.exec(['nsenter', `--net=${nsDir}/b`, '--', 'ping', '-n', '-q', '-c', '1', '-W', '2', '10.81.0.2'], { timeoutMs: 8_000 });
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);
  }, 60_000);

  it('a sysctl the user namespace cannot write is left alone with one warning', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { subids: false });
    // As if ip_forward were not the user namespace's to change: read-only for it.
    const f = '/proc/sys/net/ipv4/ip_forward';
    const ns = await unshareAsUser(sb, user, `mount --bind ${f} ${f} && mount -o remount,bind,ro ${f}`);
    const r = await ns.brnet(['network', 'create', 'web', '--subnet', '10.78.0.0/24']);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('warning'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/rootless: net\.ipv4\.ip_forward cannot be set/);
    // Left alone is not drift.
    const check = await ns.brnet(['check']);
    expect(check.code, check.stderr + check.stdout).toBe(0);
  }, 60_000);

  it('without CAP_NET_ADMIN over the network namespace the error says which capability and which namespace', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { subids: false });
    const plain = await user.exec([BRNET_BIN, 'network', 'create', 'web']);
    expect(plain.code).toBe(5);
    expect(plain.stderr).toMatch(/needs CAP_NET_ADMIN over network namespace net:\[\d+\], which uid \d+ does not have/);
    expect(plain.stderr).toMatch(/hint: .*brnet rootless/);

    // A user namespace without a network namespace of its own: capabilities that do not reach it.
    const userOnly = await user.exec(['unshare', '-r', '--', BRNET_BIN, 'network', 'create', 'web']);
    expect(userOnly.code).toBe(5);
    expect(userOnly.stderr).toMatch(/CAP_NET_ADMIN of user namespace user:\[\d+\] does not extend to network namespace net:\[\d+\]/);

    // Nothing was written: neither the state nor the network.
    expect((await sb.sh(`ls -A ${user.runtimeDir}`)).stdout.trim()).toBe('');
  }, 60_000);
});

describeRoot('brnet rootless', () => {
  it('runs CMD as root of a user namespace with a network of its own, where brnet works; the state stays in $XDG_RUNTIME_DIR/brnet', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { tun: true });
    const script = [
      'set -e',
      'test "$(id -u)" = 0',
      'test -n "$ROOTLESSKIT_STATE_DIR"',
      'brnet -q network create web --subnet 10.79.0.0/24',
      'brnet -q endpoint add web a --netns a --create-netns',
      'brnet -q endpoint add web b --netns b --create-netns',
      'nsenter --net=/run/netns/a ping -n -q -c 1 -W 2 10.79.0.3 >/dev/null',
      'brnet check',
      'ls /run/netns',
    ].join('\n');
    const bindir = `${user.runtimeDir}/bin`;
    await sb.sh(`mkdir -p ${bindir} && ln -s ${BRNET_BIN} ${bindir}/brnet`);
    const r = await user.exec([BRNET_BIN, 'rootless', '--', 'sh', '-c', script], { env: { PATH: `${bindir}:/usr/sbin:/usr/bin:/sbin:/bin` }, timeoutMs: 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(['a', 'b']);
    // The state outlives rootlesskit (the namespaces do not); the host's /run/netns saw nothing.
    const state = JSON.parse(ok(await sb.sh(`cat ${user.runtimeDir}/brnet/state.json`), 'cat state').stdout);
    expect(state.networks.map((n: any) => n.name)).toEqual(['web']);
    expect((await sb.sh('ls -A /run/netns')).stdout.trim()).toBe('');
    expect(await writtenElsewhere(user)).toEqual([]);

    // CMD's exit status is brnet rootless's.
    const failing = await user.exec([BRNET_BIN, 'rootless', '--', 'sh', '-c', 'exit 7'], { timeoutMs: 30_000 });
    expect(failing.code).toBe(7);
  }, 90_000);

  it('says which package or which line is missing (exit 5)', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { subids: false, tun: true });
    const noSubids = await user.exec([BRNET_BIN, 'rootless', '--', 'true']);
    expect(noSubids.code).toBe(5);
    expect(noSubids.stderr).toContain(`/etc/subuid has no range of subordinate uids for ${user.name}`);
    expect(noSubids.stderr).toContain(`hint: add the line "${user.name}:100000:65536" to /etc/subuid`);

    // PATH without the tools: each is named with its package.
    const bindir = `${user.runtimeDir}/bin`;
    await sb.sh(`mkdir -p ${bindir}`);
    const expectMissing = async (tool: string, pkg: string) => {
      const r = await user.exec([BRNET_BIN, 'rootless', '--', 'true'], { env: { PATH: bindir } });
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain(`\`${tool}\` not found`);
      expect(r.stderr).toContain(`hint: install it: apt-get install ${pkg}`);
      await sb!.sh(`ln -s "$(command -v ${tool})" ${bindir}/${tool}`);
    };
    await expectMissing('rootlesskit', 'rootlesskit');
    await expectMissing('slirp4netns', 'slirp4netns');
    await expectMissing('newuidmap', 'uidmap');
  }, 60_000);
});

describeRoot('published ports inside rootlesskit', () => {
  it('are exposed on the real host through the port API, removed on unpublish; a port the host refuses is exit 4', async () => {
    sb = await Sandbox.create();
    const user = await addUser(sb, { tun: true });
    const rk = await startRootless(sb, user);
    // One at a time per user (rootlesskit locks its state dir): a second says how to join it.
    const second = await user.exec([BRNET_BIN, 'rootless', '--', 'true'], { timeoutMs: 20_000 });
    expect(second.code, second.stderr).toBe(4);
    expect(second.stderr).toContain(`hint: enter its namespaces instead: nsenter -U --preserve-credentials -n -m -t ${rk.childPid}`);
    // rootlesskit answers an empty list with null.
    const exposed = async () => (await rk.api('GET', '/v1/ports')).body ?? [];
    ok(await rk.brnet(['network', 'create', 'web', '--subnet', '10.80.0.0/24']), 'network create');
    ok(await rk.brnet(['endpoint', 'add', 'web', 'a', '--netns', 'a', '--create-netns', '-p', '18080:80']), 'endpoint add');
    sb.spawnBackground([...user.asUser({ ROOTLESSKIT_STATE_DIR: `${user.runtimeDir}/rootlesskit` }), 'nsenter', '-t', String(rk.childPid), '-U', '-n', '-m', '--preserve-credentials', '--', 'nsenter', '--net=/run/netns/a', '--', process.execPath, '-e', ECHO]);

    // The binding records its exposure, and rootlesskit has it: parent 18080, child the endpoint.
    const state = JSON.parse(ok(await sb.sh(`cat ${user.runtimeDir}/brnet/state.json`), 'cat state').stdout);
    const port = state.networks[0].endpoints[0].ports[0];
    expect(typeof port.rootlesskit).toBe('number');
    expect(await exposed()).toEqual([{ id: port.rootlesskit, spec: expect.objectContaining({ proto: 'tcp', parentIP: '0.0.0.0', parentPort: 18080, childIP: '10.80.0.2', childPort: 80 }) }]);

    // From the real host (the sandbox), to its own loopback: answered from inside.
    let reached = await probe(sb, null, 'tcp', '127.0.0.1', 18080);
    for (let i = 0; !reached.ok && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100)); // the echo server may still be starting
      reached = await probe(sb, null, 'tcp', '127.0.0.1', 18080);
    }
    expect(reached.ok, reached.error).toBe(true);
    expect((await rk.brnet(['check'])).code).toBe(0);

    // Gone behind brnet's back: check says so, restore exposes it again.
    expect((await rk.api('DELETE', `/v1/ports/${port.rootlesskit}`)).status).toBeLessThan(300);
    const drift = await rk.brnet(['check']);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/web\/a 0\.0\.0\.0:18080\/tcp -> 10\.80\.0\.2:80/);
    ok(await rk.brnet(['restore']), 'restore');
    expect((await rk.brnet(['check'])).code).toBe(0);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 18080)).ok).toBe(true);

    ok(await rk.brnet(['port', 'unpublish', 'web', 'a']), 'unpublish');
    expect(await exposed()).toEqual([]);
    expect((await probe(sb, null, 'tcp', '127.0.0.1', 18080)).ok).toBe(false);

    // Below the real host's ip_unprivileged_port_start: refused, and nothing changes.
    const low = await rk.brnet(['port', 'publish', 'web', 'a', '80:80']);
    expect(low.code, low.stderr).toBe(4);
    expect(low.stderr).toMatch(/cannot expose 0\.0\.0\.0:80\/tcp on the real host/);
    expect(low.stderr).toMatch(/hint: .*ip_unprivileged_port_start/);
    expect((await rk.brnet(['port', 'ls', '-q'])).stdout.trim()).toBe('');
    expect(await exposed()).toEqual([]);

    // endpoint rm takes its exposures along.
    ok(await rk.brnet(['port', 'publish', 'web', 'a', '18081:80']), 'publish');
    expect(await exposed()).toHaveLength(1);
    ok(await rk.brnet(['endpoint', 'rm', 'web', 'a']), 'endpoint rm');
    expect(await exposed()).toEqual([]);
    // And network rm --force, with the endpoints it removes.
    ok(await rk.brnet(['endpoint', 'add', 'web', 'b', '--netns', 'b', '--create-netns', '-p', '18082:80', '-p', '18083:53/udp']), 'endpoint add b');
    expect((await exposed()).map((p: any) => p.spec.proto).sort()).toEqual(['tcp', 'udp']);
    ok(await rk.brnet(['network', 'rm', '--force', 'web']), 'network rm');
    expect(await exposed()).toEqual([]);
  }, 120_000);
});
