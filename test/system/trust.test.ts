// Trust and ownership: brnet touches only what it can prove is its own — marked devices,
// namespaces whose identity it can confirm, its own chains and tagged jumps, its own instance.
import { cpSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { BRNET_BIN, type ExecResult, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

/**
 * `ip link add NAME type dummy`; this test kernel has no dummy driver, so an ifb device (just
 * as simple: no peer, no lower device) stands in for it there.
 */
const addDummy = (name: string) => `{ ip link add ${name} type dummy 2>/dev/null || ip link add ${name} type ifb; }`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs fn in a fresh sandbox and always destroys it. */
async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await Sandbox.create();
  try {
    await fn(sb);
  } finally {
    await sb.destroy();
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | null> | T | null, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const instanceOf = (dir: string): string => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).instance;
const json = (r: ExecResult, what: string): any => {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return JSON.parse(r.stdout);
};
const parse = (s: string): any[] => (s.trim() === '' ? [] : JSON.parse(s));
const addrs = (l: any) => (l?.addr_info ?? []).map((a: any) => `${a.local}/${a.prefixlen}`);

/** `ip -j -d addr show dev NAME` in the sandbox or namespace ns; null when missing. */
async function link(sb: Sandbox, name: string, ns: string | null = null): Promise<any | null> {
  const r = await sb.exec(['ip', ...(ns ? ['-n', ns] : []), '-j', '-d', 'addr', 'show', 'dev', name]);
  return r.code === 0 ? (JSON.parse(r.stdout)[0] ?? null) : null;
}

/** What brnet must not change on a device it does not own. */
async function device(sb: Sandbox, name: string) {
  const l = await link(sb, name);
  return l && { kind: l.linkinfo?.info_kind, up: (l.flags ?? []).includes('UP'), alias: l.ifalias ?? '', master: l.master ?? null, mtu: l.mtu, addrs: addrs(l) };
}

/** Links (name, kind, alias, master, addresses) and both rule sets: what "changes nothing" compares. */
async function snapshot(sb: Sandbox) {
  const links = ((await sb.ipJson(['-d', 'addr'])) as any[]).map((l) => [l.ifname, l.linkinfo?.info_kind, l.ifalias, l.master, addrs(l)]);
  return { links, v4: await sb.iptablesSave(4), v6: await sb.iptablesSave(6) };
}

const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const nsLink = (pid: number, kind: string) => {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return '';
  }
};
const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
/** The pid a host pid has in its innermost pid namespace (last field of NSpid). */
const innerPid = (pid: number) => Number(/^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim().split(/\s+/).pop());

describeRoot('trust: marks and instance', () => {
  it('carries the instance id on the bridge, both veth ends, the created namespace and every iptables rule', () =>
    withSandbox(async (sb) => {
      const net = (await sb.brnetOk(['network', 'create', 'mark', '--subnet', '10.90.10.0/24', '--json'])).json();
      const ep = (await sb.brnetOk(['endpoint', 'add', 'mark', 'm1', '--netns', 'markns', '--create-netns', '-p', '8090:80', '--json'])).json();
      const inst = instanceOf(sb.stateDir);
      expect(inst).toMatch(/^[0-9a-f]{8}$/);
      expect((await link(sb, net.bridge))?.ifalias).toBe(`brnet@${inst}:mark`);
      expect((await link(sb, ep.hostIfname))?.ifalias).toBe(`brnet@${inst}:mark:m1`);
      expect((await link(sb, ep.ifname, 'markns'))?.ifalias).toBe(`brnet@${inst}:mark:m1`);
      expect((await link(sb, 'lo', 'markns'))?.ifalias ?? '').toMatch(new RegExp(`^brnet@${inst}:netns:`));
      for (const fam of [4, 6] as const) {
        const lines = (await sb.iptablesSave(fam)).split('\n');
        const chains = lines.filter((l) => l.startsWith(':BRNET')).map((l) => l.slice(1).split(' ')[0]);
        for (const c of chains) expect(c).toMatch(/^BRNET-(FORWARD|DNAT|POSTROUTING|RAW|(IN|DNAT|POST|RAW)-[0-9a-f]{12})$/);
        const jumps = lines.filter((l) => /^-A (?!BRNET)\S+ .*-j BRNET/.test(l));
        const own = lines.filter((l) => l.startsWith('-A BRNET'));
        if (fam === 4) {
          expect(jumps.length).toBeGreaterThan(0);
          expect(own.length).toBeGreaterThan(0);
        }
        for (const j of jumps) expect(j).toMatch(new RegExp(`--comment "?brnet@${inst}"?( |$)`));
        for (const r of own) expect(r).toMatch(new RegExp(`--comment "?brnet@${inst}:[^ "]+"?( |$)`));
      }
    }));

  it('a device with this instance\'s mark unknown to the state is a leftover that restore deletes', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'orph', '--subnet', '10.90.13.0/24']);
      const inst = instanceOf(sb.stateDir);
      expect((await sb.sh(`${addDummy('brorph0')} && ip link set brorph0 alias brnet@${inst}:gone`)).code).toBe(0);
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^leftover: device brorph0/m);
      await sb.brnetOk(['restore']);
      expect(await link(sb, 'brorph0')).toBeNull();
      const again = await sb.brnet(['check']);
      expect([again.code, again.stdout]).toEqual([0, '']);
    }));

  it('a namespace a killed call created is a leftover that restore deletes; one of that name made by someone else is not', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'orphns', '--subnet', '10.90.14.0/24']);
      const inst = instanceOf(sb.stateDir);
      // What `endpoint add --create-netns` leaves when killed between `ip netns add` and its
      // state write: the note, and the namespace with its marked loopback.
      writeFileSync(join(sb.stateDir, 'netns.pending'), 'half 0badc0de\nmine 1badc0de\n');
      await sb.sh(`ip netns add half && ip -n half link set dev lo alias brnet@${inst}:netns:0badc0de`);
      await sb.sh('ip netns add mine'); // the same kind of note, but someone else's namespace
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^leftover: namespace half /m);
      expect(c.stdout).not.toContain('mine');
      await sb.brnetOk(['restore']);
      const names = (await sb.sh('ip netns list')).stdout;
      expect(names).not.toMatch(/^half\b/m);
      expect(names).toMatch(/^mine\b/m);
      expect([(await sb.brnet(['check'])).code]).toEqual([0]);
      // The note keeps only what may still need removing.
      expect(readFileSync(join(sb.stateDir, 'netns.pending'), 'utf8')).toBe('mine 1badc0de\n');
    }));

  it('a device of another instance is foreign: check names it, restore exits 5 and changes nothing', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'orph', '--subnet', '10.90.13.0/24']);
      expect((await sb.sh(`${addDummy('brorph1')} && ip link set brorph1 alias brnet@deadbeef:gone`)).code).toBe(0);
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^foreign: .*brorph1/m);
      const before = await snapshot(sb);
      const r = await sb.brnet(['restore']);
      expect(r.code, r.stderr).toBe(5);
      expect((await link(sb, 'brorph1'))?.ifalias).toBe('brnet@deadbeef:gone');
      expect(await snapshot(sb)).toEqual(before);
      await sb.sh('ip link del brorph1');
      const again = await sb.brnet(['check']);
      expect([again.code, again.stdout]).toEqual([0, '']);
    }));
});

describeRoot('trust: namespace identity', () => {
  it('pid: a process that got the PID of the endpoint\'s dead process is not configured, the endpoint is stale', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'pidnet', '--subnet', '10.90.11.0/24']);
      const sandboxNet = nsLink(sb.pid, 'net');
      const sandboxMnt = nsLink(sb.pid, 'mnt');
      // A pid namespace of our own (with its own /proc), so that we can hand out PIDs:
      // its pid 1 is a `sleep infinity`; brnet and everything else below runs inside it.
      const pidns = sb.spawnBackground(['unshare', '--pid', '--fork', '--mount-proc', 'sleep', 'infinity']);
      const init = await waitFor('the pid namespace', () =>
        children(pidns.pid).find((c) => comm(c) === 'sleep' && nsLink(c, 'mnt') !== sandboxMnt && nsLink(c, 'mnt') !== '') ?? null,
      );
      const inPidNs = (argv: string[], env?: Record<string, string>) =>
        sb.exec(['nsenter', '-t', String(init), '-p', '-m', '--', ...argv], env ? { env } : undefined);
      const brnetP = (args: string[]) => inPidNs([BRNET_BIN, ...args], sb.brnetEnv());
      const netOf = async (pid: number, ...cmd: string[]) => inPidNs(['nsenter', '-t', String(pid), '-n', ...cmd]);

      // The endpoint's process: a child of nsenter, which reaps it when it dies (pid 1, a
      // plain sleep, would leave a zombie holding the PID).
      const orig = sb.spawnBackground(['nsenter', '-t', String(init), '-p', '-m', '--', 'unshare', '--net', 'sleep', 'infinity']);
      const origHost = await waitFor('the endpoint process', () =>
        children(orig.pid).find((c) => comm(c) === 'sleep' && ![sandboxNet, ''].includes(nsLink(c, 'net'))) ?? null,
      );
      const P = innerPid(origHost);
      const ep = json(await brnetP(['endpoint', 'add', 'pidnet', 'ep', '--netns', `pid:${P}`, '--json']), 'endpoint add');
      expect(JSON.stringify(parse((await netOf(P, 'ip', '-j', 'addr')).stdout))).toContain(ep.ipv4.split('/')[0]);

      process.kill(origHost, 'SIGKILL');
      await orig.exited;
      await orig.kill();
      expect((await inPidNs(['test', '-e', `/proc/${P}`])).code).toBe(1);

      // The impostor: ns_last_pid = P-1, so the next process forked in this pid namespace gets P.
      // Nothing else may fork in there meanwhile: we wait for its "pid N" line from outside
      // (no nsenter into the pid namespace) before looking at it. Retried, should anything
      // still have taken the PID first.
      let got = 0;
      for (let attempt = 0; attempt < 5 && got !== P; attempt++) {
        const imp = sb.spawnBackground(['nsenter', '-t', String(init), '-p', '-m', '--', 'sh', '-c',
          `echo ${P - 1} > /proc/sys/kernel/ns_last_pid; unshare --net sleep infinity & echo "pid $!"; wait`]);
        got = Number(await waitFor('the impostor\'s pid', () => /pid (\d+)/.exec(imp.stdout())?.[1] ?? null));
        if (got !== P) await imp.kill();
      }
      expect(got, 'could not give the impostor the same PID').toBe(P);
      await waitFor(`the impostor with PID ${P} in a namespace of its own`, async () => {
        const r = await inPidNs(['sh', '-c', `cat /proc/${P}/comm && readlink /proc/${P}/ns/net`]);
        const [c, n] = r.stdout.trim().split('\n');
        return r.code === 0 && c === 'sleep' && n !== undefined && n !== sandboxNet ? true : null;
      });

      const restore = await brnetP(['restore']);
      expect(restore.code, restore.stderr).toBe(0);
      const impLinks = parse((await netOf(P, 'ip', '-j', 'addr')).stdout);
      expect(impLinks.map((l: any) => l.ifname)).toEqual(['lo']);
      expect(JSON.stringify(impLinks)).not.toContain('10.90.11.');
      expect(parse((await netOf(P, 'ip', '-j', 'route', 'show', 'default')).stdout)).toEqual([]);
      expect(parse((await netOf(P, 'ip', '-j', '-6', 'route', 'show', 'default')).stdout)).toEqual([]);

      const check = await brnetP(['check']);
      expect(check.stderr).toContain('endpoint pidnet/ep is stale');
      expect([check.code, check.stdout]).toEqual([0, '']);
      const cj = json(await brnetP(['check', '--json']), 'check --json');
      expect(cj.stale).toContainEqual(expect.objectContaining({ network: 'pidnet', endpoint: 'ep' }));
      const ls = json(await brnetP(['endpoint', 'ls', '--json']), 'endpoint ls --json');
      expect(ls.find((e: any) => e.name === 'ep')).toMatchObject({ stale: true });
      const table = (await brnetP(['endpoint', 'ls'])).stdout.split('\n');
      const col = table[0]!.indexOf('STATUS');
      expect(col, table.join('\n')).toBeGreaterThanOrEqual(0);
      const row = table.find((l) => /^pidnet\s+ep\s/.test(l));
      expect(row?.slice(col).split(/\s+/)[0]).toBe('stale');
    }));

  it('a named namespace deleted and created again under the same name is not the endpoint\'s', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'named', '--subnet', '10.90.12.0/24']);
      expect((await sb.sh('ip netns add ns1')).code).toBe(0);
      const ep = (await sb.brnetOk(['endpoint', 'add', 'named', 'e1', '--netns', 'ns1', '--json'])).json();
      expect(addrs(await link(sb, ep.ifname, 'ns1'))).toContain(ep.ipv4);
      expect((await sb.sh('ip netns del ns1 && ip netns add ns1')).code).toBe(0);
      // the old namespace (and with it the veth pair) goes away asynchronously
      await waitFor('the old veth to disappear', async () => ((await link(sb, ep.hostIfname)) === null ? true : null));
      const restore = await sb.brnet(['restore']);
      expect(restore.code, restore.stderr).toBe(0);
      const inside = await sb.ipJson(['-n', 'ns1', 'addr']);
      expect(inside.map((l: any) => l.ifname)).toEqual(['lo']);
      expect(JSON.stringify(inside)).not.toContain('10.90.12.');
      expect(await sb.ipJson(['-n', 'ns1', 'route', 'show', 'default'])).toEqual([]);
      const check = await sb.brnet(['check']);
      expect(check.stderr).toContain('endpoint named/e1 is stale');
      expect(check.code).toBe(0);
      expect((await sb.brnetOk(['check', '--json'])).json().stale).toContainEqual(expect.objectContaining({ network: 'named', endpoint: 'e1' }));
    }));
});

describeRoot('trust: foreign devices under a brnet bridge name', () => {
  it('a foreign bridge is a conflict: check names it, restore, rm and rm --force never touch it', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'conflicted', '--subnet', '10.90.3.0/24', '-o', 'com.docker.network.bridge.name=brtrust0']);
      expect((await sb.sh('ip link del brtrust0 && ip link add brtrust0 type bridge && ip addr add 192.0.2.1/24 dev brtrust0')).code).toBe(0);
      const foreign = await device(sb, 'brtrust0');
      expect(foreign).toMatchObject({ kind: 'bridge', alias: '', addrs: ['192.0.2.1/24'] });
      const untouched = async () => expect(await device(sb, 'brtrust0')).toEqual(foreign);
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^conflict: .*brtrust0/m);
      const r = await sb.brnet(['restore']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('conflicted');
      await untouched();
      const rm = await sb.brnet(['network', 'rm', 'conflicted']);
      expect(rm.code, rm.stderr).toBe(4);
      await untouched();
      const force = await sb.brnet(['network', 'rm', '--force', 'conflicted']);
      expect(force.code, force.stderr).toBe(0);
      expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('');
      await untouched();
    }));

  it('a non-bridge device under the bridge name is a conflict too, left alone by restore', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'dummied', '--subnet', '10.90.4.0/24', '-o', 'com.docker.network.bridge.name=brtrust1']);
      expect((await sb.sh(`ip link del brtrust1 && ${addDummy('brtrust1')}`)).code).toBe(0);
      const before = await device(sb, 'brtrust1');
      expect(before).toMatchObject({ up: false, alias: '', addrs: [] });
      const c = await sb.brnet(['check']);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/^conflict: .*brtrust1/m);
      const r = await sb.brnet(['restore']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('dummied');
      expect(await device(sb, 'brtrust1')).toEqual(before);
    }));
});

describeRoot('trust: admin rules and chains that only look like brnet\'s', () => {
  it('survive create, restore and rm unchanged, and check stays clean', () =>
    withSandbox(async (sb) => {
      const setup = await sb.sh(
        'iptables -A INPUT -i brnet0 -p tcp --dport 22 -j ACCEPT && iptables -N BRNETWATCH && iptables -A BRNETWATCH -j RETURN && ' +
          'iptables -A INPUT -m comment --comment "managed by brnet team" -j ACCEPT',
      );
      expect(setup.code, setup.stderr).toBe(0);
      const admin = async () => (await sb.iptablesSave(4)).split('\n').filter((l) => /brnet0|BRNETWATCH|managed by brnet team/.test(l));
      const expected = await admin();
      expect(expected).toHaveLength(4);
      const clean = async (step: string) => {
        const c = await sb.brnet(['check']);
        expect([step, c.code, c.stdout]).toEqual([step, 0, '']);
        expect(await admin()).toEqual(expected);
      };
      await clean('before anything');
      await sb.brnetOk(['network', 'create', 'adm', '--subnet', '10.90.14.0/24']);
      await clean('after network create');
      const r = await sb.brnet(['restore']);
      expect(r.code, r.stderr).toBe(0);
      await clean('after restore');
      await sb.brnetOk(['network', 'rm', 'adm']);
      await clean('after network rm');
      expect((await sb.brnet(['restore'])).code).toBe(0);
      await clean('after restore with no network');
    }));
});

describeRoot('trust: two state dirs on one host', () => {
  it('the second instance refuses to change anything (5), the first keeps working', () =>
    withSandbox(async (sb) => {
      const dirB = mkdtempSync(join(tmpdir(), 'brnet-b-'));
      try {
        await sb.brnetOk(['network', 'create', 'alpha', '--subnet', '10.90.5.0/24']);
        await sb.brnetOk(['endpoint', 'add', 'alpha', 'srv', '--netns', 'srv5', '--create-netns', '-p', '8080:80']);
        const client = await sb.addOutsideClient();
        await startEcho(sb, 'srv5', 'tcp', 80);
        expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8080)).ok).toBe(true);

        const envB = { BRNET_STATE_DIR: dirB };
        const create = await sb.brnet(['network', 'create', 'other', '--subnet', '10.91.0.0/24'], { env: envB });
        expect(create.code, create.stderr).toBe(5);
        expect(create.stderr).toContain('another brnet instance');
        expect(JSON.stringify(await sb.ipJson(['addr']))).not.toContain('10.91.0.');
        const restoreB = await sb.brnet(['restore'], { env: envB });
        expect(restoreB.code, restoreB.stderr).toBe(5);

        const p = await probe(sb, client.ns, 'tcp', client.hostIp, 8080);
        expect(p.ok, JSON.stringify(p)).toBe(true);
        const checkA = await sb.brnet(['check']);
        expect([checkA.code, checkA.stdout]).toEqual([0, '']);
        const checkB = await sb.brnet(['check'], { env: envB });
        expect(checkB.code).toBe(1);
        expect(checkB.stdout).toContain('foreign');
      } finally {
        rmSync(dirB, { recursive: true, force: true });
      }
    }));
});

describeRoot('trust: reboot', () => {
  it('restore re-creates the namespace brnet created, with the same address, MAC and published port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brnet-reboot-'));
    try {
      let ep: any;
      await withSandbox(async (sb) => {
        await sb.brnetOk(['network', 'create', 'boot', '--subnet', '10.90.6.0/24']);
        ep = (await sb.brnetOk(['endpoint', 'add', 'boot', 'app', '--netns', 'app6', '--create-netns', '-p', '8081:80', '--json'])).json();
        cpSync(join(sb.stateDir, 'state.json'), join(dir, 'state.json'));
      });
      await withSandbox(async (fresh) => {
        const env = { BRNET_STATE_DIR: dir };
        const r = await fresh.brnet(['restore'], { env });
        expect(r.code, r.stderr).toBe(0);
        expect((await fresh.sh('ip netns list')).stdout).toMatch(/^app6\b/m);
        const inner = await link(fresh, ep.ifname, 'app6');
        expect(inner?.address).toBe(ep.mac);
        expect(addrs(inner)).toContain(ep.ipv4);
        const client = await fresh.addOutsideClient();
        await startEcho(fresh, 'app6', 'tcp', 80);
        const p = await probe(fresh, client.ns, 'tcp', client.hostIp, 8081);
        expect(p.ok, JSON.stringify(p)).toBe(true);
        const c = await fresh.brnet(['check'], { env });
        expect([c.code, c.stdout]).toEqual([0, '']);
        expect(c.stderr).not.toMatch(/stale/);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeRoot('trust: restore repairs networks independently', () => {
  it('one unrepairable network (dummy under its bridge name) does not stop the others after a nat flush', () =>
    withSandbox(async (sb) => {
      const x = (await sb.brnetOk(['network', 'create', 'netx', '--subnet', '10.90.7.0/24', '--json'])).json();
      await sb.brnetOk(['network', 'create', 'nety', '--subnet', '10.90.8.0/24']);
      await sb.brnetOk(['endpoint', 'add', 'netx', 'x1', '--netns', 'x7', '--create-netns', '-p', '8087:80']);
      await sb.brnetOk(['endpoint', 'add', 'nety', 'y1', '--netns', 'y7', '--create-netns', '-p', '8088:80']);
      const client = await sb.addOutsideClient();
      await startEcho(sb, 'y7', 'tcp', 80);
      expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8088)).ok).toBe(true);

      expect((await sb.sh(`ip link del ${x.bridge} && ${addDummy(x.bridge)} && iptables -t nat -F`)).code).toBe(0);
      const dummy = await device(sb, x.bridge);
      expect(dummy).toMatchObject({ up: false, alias: '', master: null, addrs: [] });
      expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8088, { timeoutMs: 800 })).ok).toBe(false);
      const r = await sb.brnet(['restore']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('netx');
      const p = await probe(sb, client.ns, 'tcp', client.hostIp, 8088);
      expect(p.ok, JSON.stringify(p)).toBe(true);
      expect(await device(sb, x.bridge)).toEqual(dummy);
    }));
});

describeRoot('trust: state and marks of before instances', () => {
  it('are taken over: endpoints proven by their live veth get an identity, the others are stale, rules are re-marked', () =>
    withSandbox(async (sb) => {
      await sb.brnetOk(['network', 'create', 'old', '--subnet', '10.90.40.0/24']);
      const kept = (await sb.brnetOk(['endpoint', 'add', 'old', 'kept', '--netns', 'oldns1', '--create-netns', '-p', '8094:80', '--json'])).json();
      const lost = (await sb.brnetOk(['endpoint', 'add', 'old', 'lost', '--netns', 'oldns2', '--create-netns', '--json'])).json();
      // What an older brnet wrote: no instance, no identities, marks without an instance id.
      const file = join(sb.stateDir, 'state.json');
      const st = JSON.parse(readFileSync(file, 'utf8'));
      const inst = st.instance;
      st.instance = undefined;
      for (const n of st.networks) for (const e of n.endpoints) e.netnsIdentity = undefined;
      await sb.sh(`cat > ${file} <<'EOF'\n${JSON.stringify(st)}\nEOF`);
      const relabel = (ns: string) =>
        `for d in /sys/class/net/*; do a=$(cat $d/ifalias); [ -n "$a" ] && ip ${ns ? `-n ${ns} ` : ''}link set dev \${d##*/} alias "$(echo "$a" | sed 's/^brnet@${inst}:/brnet:/')"; done; true`;
      await sb.sh(relabel(''));
      for (const ns of ['oldns1', 'oldns2']) await sb.sh(`ip netns exec ${ns} sh -c '${relabel('').replace(/'/g, `'\\''`)}'`);
      await sb.sh(`for f in 4 6; do s=$([ $f = 4 ] && echo iptables || echo ip6tables); $s-save | sed -e 's/brnet@${inst}/brnet/g' | $s-restore; done`);
      expect((await sb.sh('iptables-save')).stdout).not.toContain(`brnet@${inst}`);
      // Before any change: as the older brnet left it, the kernel matches.
      const c = await sb.brnet(['check']);
      expect([c.code, c.stdout]).toEqual([0, '']);
      // lost's veth goes: nothing proves its namespace is still its own.
      await sb.sh(`ip link del ${lost.hostIfname}`);
      await sb.brnetOk(['restore']);
      const after = JSON.parse(readFileSync(file, 'utf8'));
      expect(after.instance).toMatch(/^[0-9a-f]{8}$/);
      const eps = Object.fromEntries(after.networks[0].endpoints.map((e: any) => [e.name, e]));
      expect(eps.kept.netnsIdentity).toMatchObject({ dev: expect.any(Number), ino: expect.any(Number) });
      expect(eps.lost.netnsIdentity).toBeNull();
      const ls = (await sb.brnetOk(['endpoint', 'ls', '--json'])).json();
      expect(Object.fromEntries(ls.map((e: any) => [e.name, e.stale]))).toEqual({ kept: false, lost: true });
      const save = (await sb.sh('iptables-save')).stdout;
      expect(save).toContain(`brnet@${after.instance}`);
      expect(save).not.toMatch(/--comment "?brnet"? /);
      const again = await sb.brnet(['check']);
      expect([again.code, again.stdout]).toEqual([0, '']);
      expect(again.stderr).toMatch(/endpoint old\/lost is stale/);
      // kept still serves its published port.
      const client = await sb.addOutsideClient();
      const echo = await startEcho(sb, 'oldns1', 'tcp', 80);
      expect((await probe(sb, client.ns, 'tcp', client.hostIp, 8094)).ok).toBe(true);
      await echo.stop();
      expect(kept.ipv4).toBeTruthy();
    }));
});
