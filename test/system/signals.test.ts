// Signals and stopped calls: SIGINT, SIGTERM and SIGHUP roll a change back (or let it finish
// past its point of no return), free the lock and exit 128 + the signal; a call stopped past
// the lock's stale time loses no one else's commit. No `restore` is run in between: what a
// signalled call leaves must already agree with the state.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BRNET_BIN, Sandbox, describeRoot } from '../helpers/sandbox.ts';

let sb: Sandbox;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const state = () => JSON.parse(readFileSync(join(sb.stateDir, 'state.json'), 'utf8'));

/** The state and the kernel agree, nothing of brnet's is left over, and the lock is free. */
async function assertAgree() {
  expect(existsSync(join(sb.stateDir, 'state.lock'))).toBe(false);
  const check = await sb.brnet(['check']);
  expect(`${check.code} ${check.stdout}${check.stderr}`).toBe('0 ');
  const st = state();
  const veths = new Set<string>(st.networks.flatMap((n: any) => n.endpoints.map((e: any) => e.hostIfname)));
  const ours = (await sb.ipJson(['link', 'show', 'type', 'veth'])).filter((l: any) => /^brnet@/.test(l.ifalias ?? ''));
  expect(ours.map((l: any) => l.ifname).sort()).toEqual([...veths].sort());
  const made = new Set<string>(st.networks.flatMap((n: any) => n.endpoints.filter((e: any) => e.netnsCreated).map((e: any) => e.netns)));
  const names = (await sb.sh('ip netns list')).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n?.startsWith('sig'));
  expect(names.sort()).toEqual([...made].sort());
}

/** Starts `brnet args`, sends `signal` after `delay` ms, and returns its exit status. */
async function signalled(args: string[], signal: NodeJS.Signals, delay: number): Promise<{ code: number; stderr: string }> {
  const p = sb.spawnBackground([BRNET_BIN, ...args], { env: sb.brnetEnv() });
  await sleep(delay);
  try {
    process.kill(p.pid, signal);
  } catch {}
  const code = await p.exited;
  const stderr = p.stderr();
  await p.kill();
  return { code, stderr };
}

function batchFile(lines: string[]): string {
  // In the sandbox's state dir, which goes with the sandbox.
  const f = join(sb.stateDir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

const endpoints = (net: string, n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => `endpoint add ${net} e${i} --netns ${prefix}${i} --create-netns`);

describeRoot('signals during a change', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('network rm --force of 30 endpoints: SIGTERM at any moment leaves state and kernel agreeing', async () => {
    const codes = new Set<number>();
    for (const [i, delay] of [5, 40, 80, 150, 300].entries()) {
      await sb.brnetOk(['network', 'create', 'sigrm', '--subnet', '10.93.0.0/24']);
      await sb.brnetOk(['batch', batchFile(endpoints('sigrm', 30, `sigr${i}x`))], { timeoutMs: 60_000 });
      const r = await signalled(['network', 'rm', '--force', 'sigrm'], 'SIGTERM', delay);
      codes.add(r.code);
      expect([0, 143], r.stderr).toContain(r.code);
      // Before brnet is up the signal kills it at once (nothing was changed); after, it says so.
      if (r.code === 143 && r.stderr) expect(r.stderr).toMatch(/^brnet: .*interrupted by SIGTERM/m);
      await assertAgree();
      await sb.brnet(['network', 'rm', '--force', '--if-exists', 'sigrm']);
    }
    expect(codes.has(143)).toBe(true); // some signal came while it was working
    console.log(`network rm --force: exit statuses ${[...codes].join(', ')}`);
  });

  it('a batch of 200 lines interrupted by SIGINT is rolled back whole: no veth or namespace left', async () => {
    await sb.brnetOk(['network', 'create', 'sigb', '--subnet', '10.94.0.0/22']);
    const seen: string[] = [];
    for (const delay of [60, 250, 600]) {
      const before = JSON.stringify(state());
      const r = await signalled(['batch', batchFile(endpoints('sigb', 200, 'sigb'))], 'SIGINT', delay);
      expect([0, 130], r.stderr).toContain(r.code);
      seen.push(`${delay} ms: ${r.code} ${r.stderr.split('\n').find((l) => l.startsWith('brnet:')) ?? ''}`);
      if (r.code === 130) expect(JSON.stringify(state())).toBe(before);
      await assertAgree();
      await sb.brnetOk(['network', 'rm', '--force', 'sigb']);
      await sb.brnetOk(['network', 'create', 'sigb', '--subnet', '10.94.0.0/22']);
    }
    console.log(seen.join('\n'));
    expect(seen.some((l) => / 130 brnet: .*interrupted by SIGINT: nothing was changed/.test(l))).toBe(true);
  });

  it('endpoint add --create-netns: SIGHUP and SIGTERM at any moment', async () => {
    await sb.brnetOk(['network', 'create', 'sige', '--subnet', '10.95.0.0/24']);
    for (const [i, delay] of [0, 15, 30, 50, 80].entries()) {
      const sig = i % 2 ? 'SIGHUP' : 'SIGTERM';
      const r = await signalled(['endpoint', 'add', 'sige', `a${i}`, '--netns', `sige${i}`, '--create-netns', '-p', `${45000 + i}:80`], sig, delay);
      expect([0, sig === 'SIGHUP' ? 129 : 143], r.stderr).toContain(r.code);
      await assertAgree();
    }
  });
});

describeRoot('a call stopped past the lock\'s stale time', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('loses no other call\'s commit: it finds out before writing, rolls back and exits 5', async () => {
    await sb.brnetOk(['network', 'create', 'slow', '--subnet', '10.96.0.0/22']);
    const p = sb.spawnBackground([BRNET_BIN, 'batch', batchFile(endpoints('slow', 200, 'sigs'))], { env: sb.brnetEnv() });
    await sleep(400);
    process.kill(p.pid, 'SIGSTOP');
    try {
      // Past the stale time (5 s) the lock is taken over: this call commits.
      const other = await sb.brnet(['network', 'create', 'other', '--subnet', '10.97.0.0/24'], { timeoutMs: 30_000 });
      expect(other.code, other.stderr).toBe(0);
    } finally {
      process.kill(p.pid, 'SIGCONT');
    }
    const code = await p.exited;
    const stderr = p.stderr();
    await p.kill();
    expect(code, stderr).toBe(5);
    expect(stderr).toMatch(/lost|replaced by another call/);
    expect(state().networks.map((n: any) => n.name)).toEqual(['slow', 'other']);
    expect(state().networks[0].endpoints).toEqual([]);
    await assertAgree();
  });
});
