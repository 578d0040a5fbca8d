#!/usr/bin/env node
// npm run bench: wall time (median) and processes spawned per brnet operation, on an empty
// host and on a loaded one (200 networks, 1000 endpoints, 1000 published ports), next to
// `node -e 0` and, when installed, netavark and the CNI plugins driven by ../shared/peers.
// Everything runs inside a private network+mount namespace: the host is never touched.
// A benchmark, not a test: it asserts nothing and prints a table.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The launcher users run (bin/brnet: node from the start-up snapshot when it matches).
const launcher = join(here, '..', 'bin', 'brnet');
const quick = process.argv.includes('--quick');
const RUNS = quick ? 3 : 9;

if (!process.env.BRNET_BENCH_SANDBOX) {
  // Re-run this script inside a private sandbox.
  const r = spawnSync(
    'unshare',
    ['--net', '--mount', '--propagation', 'private', 'sh', '-c',
      'mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && mount -t sysfs sysfs /sys && ip link set lo up && exec "$0" "$@"',
      process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, BRNET_BENCH_SANDBOX: '1' } },
  );
  process.exit(r.status ?? 1);
}

const stateDir = mkdtempSync(join(tmpdir(), 'brnet-bench-'));
const env = { ...process.env, BRNET_STATE_DIR: stateDir, NODE_ENV: 'production', NO_COLOR: '1', BRNET_DEBUG: '1' };

function run(argv, input) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  const procs = (r.stderr.match(/^\+ /gm) ?? []).length;
  return { ms, procs };
}
const brnet = (...args) => run([launcher, ...args]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Times `op(i)` RUNS times (with an optional untimed `after(i)`), returns medians. */
function measure(op, after = () => {}) {
  const ms = [];
  const procs = [];
  // one untimed run first: page cache, lazily created kernel state, the first table commit
  op(RUNS);
  after(RUNS);
  for (let i = 0; i < RUNS; i++) {
    const r = op(i);
    ms.push(r.ms);
    procs.push(r.procs);
    after(i);
  }
  return { ms: median(ms), procs: median(procs) };
}
const pair = (a, b) => ({ ms: a.ms + b.ms, procs: a.procs + b.procs });

const rows = [];
function record(name, empty, loaded) {
  rows.push({ name, empty, loaded });
}

function suite(tag) {
  const out = {};
  out.node = measure(() => run([process.execPath, '-e', '0']));
  out.version = measure(() => brnet('--version'));
  out.ls = measure(() => brnet('network', 'ls'));
  out.netCreateRm = measure((i) => pair(brnet('network', 'create', `b${tag}${i}`), brnet('network', 'rm', `b${tag}${i}`)));
  brnet('network', 'create', `bn${tag}`, '--subnet', tag === 'e' ? '10.250.0.0/16' : '10.251.0.0/16');
  out.epAddRm = measure((i) =>
    pair(brnet('endpoint', 'add', `bn${tag}`, `e${i}`, '--netns', `bx${tag}${i}`, '--create-netns', '-p', `${20000 + i}:80`), brnet('endpoint', 'rm', `bn${tag}`, `e${i}`)),
  );
  brnet('endpoint', 'add', `bn${tag}`, 'pub', '--netns', `bp${tag}`, '--create-netns');
  out.publish1 = measure((i) => brnet('port', 'publish', `bn${tag}`, 'pub', `${21000 + i}:80`), () => brnet('port', 'unpublish', `bn${tag}`, 'pub'));
  const specs = Array.from({ length: 100 }, (_, k) => `${22000 + k}:${1000 + k}`);
  out.publish100 = measure(() => brnet('port', 'publish', `bn${tag}`, 'pub', ...specs), () => brnet('port', 'unpublish', `bn${tag}`, 'pub'));
  out.check = measure(() => brnet('check'));
  const lines = Array.from({ length: 100 }, (_, k) => `endpoint add bn${tag} bulk${k} --netns bb${tag}${k} --create-netns -p ${23000 + k}:80`).join('\n');
  const rmLines = Array.from({ length: 100 }, (_, k) => `endpoint rm bn${tag} bulk${k}`).join('\n');
  out.batch100 = measure(() => run([launcher, 'batch', '-'], lines), () => run([launcher, 'batch', '-'], rmLines));
  brnet('endpoint', 'rm', `bn${tag}`, 'pub');
  brnet('network', 'rm', `bn${tag}`);
  return out;
}

function load() {
  // 200 networks with 5 endpoints each, one published port per endpoint, via batches.
  const t0 = performance.now();
  const nets = [];
  for (let n = 0; n < 200; n++) nets.push(`network create load${n} --subnet 10.${100 + Math.floor(n / 64)}.${(n % 64) * 4}.0/22`);
  run([launcher, 'batch', '-'], nets.join('\n'));
  for (let n = 0; n < 200; n += 20) {
    const eps = [];
    for (let m = n; m < n + 20; m++) for (let e = 0; e < 5; e++) eps.push(`endpoint add load${m} ep${e} --netns l${m}-${e} --create-netns -p ${30000 + m * 5 + e}:80`);
    run([launcher, 'batch', '-'], eps.join('\n'));
  }
  return performance.now() - t0;
}

/**
 * Right after a thousand veths come up the kernel stays busy for a while (IPv6 duplicate
 * address detection, router solicitations and MLD reports on every interface), which slows
 * every process on the machine, `node -e 0` included. Wait (at most 90 s) until the floor is
 * back within 10% of its empty-host value, so that the loaded column measures brnet's growth,
 * not the kernel settling down. Returns the seconds waited.
 */
function settle(floorMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < 90_000) {
    const xs = Array.from({ length: 5 }, () => run([process.execPath, '-e', '0']).ms);
    if (median(xs) <= floorMs * 1.1) break;
    spawnSync('sleep', ['2']);
  }
  return (performance.now() - t0) / 1000;
}

function peers() {
  const dir = join(here, '..', '..', 'shared', 'peers');
  const out = {};
  const nvk = existsSync('/usr/lib/podman/netavark') || spawnSync('sh', ['-c', 'command -v netavark']).status === 0;
  const cni = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'].some((d) => existsSync(join(d, 'bridge')));
  if (existsSync(join(dir, 'netavark-peer.sh')) && nvk) {
    const p = (...a) => run(['bash', join(dir, 'netavark-peer.sh'), ...a]);
    p('setup-host');
    out.netavark = measure((i) => pair(p('add', `c${i}`, String(24000 + i)), p('del', `c${i}`)));
    // what `brnet batch` is measured against: 100 separate setups
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) p('add', `m${i}`, String(26000 + i));
    out.netavark100 = { ms: performance.now() - t0, procs: NaN };
    for (let i = 0; i < 100; i++) p('del', `m${i}`);
    p('teardown');
  }
  if (existsSync(join(dir, 'cni-peer.sh')) && cni) {
    const p = (...a) => run(['bash', join(dir, 'cni-peer.sh'), ...a]);
    p('setup-host');
    out.cni = measure((i) => pair(p('add', `c${i}`, String(25000 + i)), p('del', `c${i}`)));
    p('teardown');
  }
  return out;
}

const fmt = (m) =>
  m ? `${m.ms.toFixed(0).padStart(6)} ms ${(Number.isNaN(m.procs) ? '   -' : String(m.procs).padStart(4))} proc` : '           -   ';
try {
  const empty = suite('e');
  const loadMs = load();
  const settled = settle(empty.node.ms);
  const loaded = suite('l');
  const names = {
    node: 'node -e 0 (floor)',
    version: 'brnet --version',
    ls: 'network ls',
    netCreateRm: 'network create + rm',
    epAddRm: 'endpoint add -p + rm',
    publish1: 'port publish (1 port)',
    publish100: 'port publish (100 ports)',
    check: 'check',
    batch100: 'batch: 100 endpoint add -p',
  };
  console.log(`\nbrnet benchmark: median of ${RUNS} runs, inside a private namespace (${new Date().toISOString()})`);
  console.log(`loaded host = 200 networks, 1000 endpoints, 1000 published ports (built in ${(loadMs / 1000).toFixed(1)} s, then ${settled.toFixed(0)} s for the kernel to settle)\n`);
  // A shared VM's speed can drift between the two columns (minutes apart); the floor is
  // measured in each, so the adjusted ratio divides that drift out.
  const drift = loaded.node.ms / empty.node.ms;
  console.log(`${'operation'.padEnd(30)} ${'empty host'.padEnd(22)} ${'loaded host'.padEnd(22)} ratio  adjusted`);
  for (const k of Object.keys(names)) {
    const ratio = loaded[k].ms / empty[k].ms;
    console.log(`${names[k].padEnd(30)} ${fmt(empty[k]).padEnd(22)} ${fmt(loaded[k]).padEnd(22)} ${ratio.toFixed(2)}   ${(ratio / drift).toFixed(2)}`);
  }
  console.log(`\n(adjusted = ratio / (loaded floor / empty floor) = ratio / ${drift.toFixed(2)})`);
  const p = process.argv.includes('--peers') ? peers() : {};
  if (p.netavark) console.log(`${'netavark setup + teardown'.padEnd(30)} ${fmt({ ...p.netavark, procs: NaN })}`);
  if (p.netavark100) console.log(`${'netavark: 100 setups'.padEnd(30)} ${fmt(p.netavark100)}`);
  if (p.cni) console.log(`${'CNI bridge+portmap add + del'.padEnd(30)} ${fmt({ ...p.cni, procs: NaN })}`);
  if (p.netavark) {
    console.log('\nratios (brnet / peer, empty host):');
    console.log(`  endpoint add -p + rm vs netavark setup + teardown: ${(empty.epAddRm.ms / p.netavark.ms).toFixed(2)}`);
    if (p.netavark100) console.log(`  batch of 100 vs 100 netavark setups: ${(empty.batch100.ms / p.netavark100.ms).toFixed(2)} (${(p.netavark100.ms / empty.batch100.ms).toFixed(1)}x faster)`);
  }
  if (p.cni) console.log(`  endpoint add -p + rm vs CNI add + del: ${(empty.epAddRm.ms / p.cni.ms).toFixed(2)}`);
  if (!process.argv.includes('--peers')) console.log('\n(peers: run `npm run bench -- --peers` with netavark / containernetworking-plugins installed)');
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
