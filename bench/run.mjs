#!/usr/bin/env node
// npm run bench: wall time (median) and processes spawned per brnet operation, on an empty
// host and on a loaded one (200 networks, 1000 endpoints, 1000 published ports), for the
// compiled executable (dist/brnet, run directly as an installed brnet is) and for the Node
// fallback (BRNET_RUNTIME=node bin/brnet), next to `node -e 0`, with the peak memory of each
// call on the loaded host; `--peers` adds netavark, the CNI plugins and Docker, driven by
// ../shared/peers, when they are installed.
// Everything runs inside a private network+mount namespace: the host is never touched.
// The compiled executable is then measured again with `firewall-backend nftables`, on the same
// loaded host (migrated live) and on the empty one, beside the iptables figures. Last, the
// userland proxy: what a proxy costs to start and to keep (memory per proxy, for a 100-port
// range), and a connection's latency through it against kernel NAT.
// A benchmark, not a test: it asserts nothing and prints a table.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const PRODUCT = ['bin/brnet', 'bin/brnet.js', 'dist/brnet', 'dist/cli.js', 'package.json'];
const peersDir = join(here, '..', '..', 'shared', 'peers');
const quick = process.argv.includes('--quick');
const withPeers = process.argv.includes('--peers');
// `--proxy`: only the userland proxy's section (a quicker look at it)
const proxyOnly = process.argv.includes('--proxy');
const RUNS = quick ? 3 : 9;
// The fallback takes twice the compiled executable's time; fewer runs of it keep the full
// bench, peers included, near a quarter of an hour on two cores.
const NODE_RUNS = quick ? 3 : 5;
const MEM_LIMIT_MIB = 64;

// Without a listener Ctrl-C kills node at once, leaving dockerd (started with setsid) behind;
// with one, the interrupted child fails, run() throws and the finally blocks clean up.
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
});

if (!process.env.BRNET_BENCH_SANDBOX) {
  if (!existsSync(join(root, 'dist', 'brnet'))) {
    console.error(`bench: ${join(root, 'dist', 'brnet')} is missing: run \`npm run build\` (or \`npm run bench\`, which builds)`);
    process.exit(1);
  }
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
const memFile = join(stateDir, 'maxrss');
// The bench runs a copy of the build: another `npm run build` in the checkout during the run
// would otherwise replace dist/ under it (a failed spawn, or columns from two builds).
for (const f of PRODUCT) {
  mkdirSync(dirname(join(stateDir, f)), { recursive: true });
  copyFileSync(join(root, f), join(stateDir, f));
  chmodSync(join(stateDir, f), statSync(join(root, f)).mode);
}
const compiled = join(stateDir, 'dist', 'brnet');
const launcher = join(stateDir, 'bin', 'brnet');
const env = {
  ...process.env,
  BRNET_STATE_DIR: stateDir,
  NODE_ENV: 'production',
  NO_COLOR: '1',
  BRNET_DEBUG: '1',
  // The peers' state lives with ours, not in their default /tmp paths, which someone else's
  // run of the same scripts may be using.
  NVK_STATE: join(stateDir, 'nvk'),
  CNP_STATE: join(stateDir, 'cnp'),
  DKPEER_DIR: join(stateDir, 'dk'),
  DKPEER_NO_IMAGE: '1',
};

// GNU time reports the largest max RSS in the process tree it waits for: brnet itself, as
// the ip/iptables processes it starts are far smaller.
const gnuTime = spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { encoding: 'utf8' });
const hasTime = gnuTime.status === 0 && /^\d+\s*$/.test(gnuTime.stderr ?? '');
let memProbe = null;

function run(argv, { input, env: extra } = {}) {
  const e = extra ? { ...env, ...extra } : env;
  const probe = memProbe;
  const args = probe ? ['/usr/bin/time', '-f', '%M', '-o', memFile, ...argv] : argv;
  const t0 = performance.now();
  const r = spawnSync(args[0], args.slice(1), { env: e, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (interrupted) throw new Error('interrupted');
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.error ?? r.status ?? r.signal}): ${r.stderr}`);
  if (probe) probe.push(Number(readFileSync(memFile, 'utf8').trim().split('\n').pop()));
  const procs = (r.stderr.match(/^\+ /gm) ?? []).length;
  return { ms, procs };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pair = (a, b) => ({ ms: a.ms + b.ms, procs: a.procs + b.procs });

/**
 * Times `op(i)` `runs` times (with an optional untimed `after(i)`), returns medians, and the
 * peak memory (MiB) of the calls `op` makes.
 */
function measure(op, after = () => {}, runs = RUNS) {
  const ms = [];
  const procs = [];
  // One untimed run first: page cache, lazily created kernel state, the first table commit.
  // It doubles as the memory run, so that GNU time in front of a call never shows in a time.
  const probe = hasTime ? [] : null;
  memProbe = probe;
  try {
    op(runs);
  } finally {
    memProbe = null;
  }
  after(runs);
  for (let i = 0; i < runs; i++) {
    const r = op(i);
    ms.push(r.ms);
    procs.push(r.procs);
    after(i);
  }
  return { ms: median(ms), procs: median(procs), mib: probe?.length ? Math.max(...probe) / 1024 : NaN };
}

// Both runtimes run the same bundle; each operation is measured for one right after the
// other, so that the machine's drift does not fall between their columns.
const RUNTIMES = {
  c: { argv: [compiled], env: undefined },
  n: { argv: [launcher], env: { BRNET_RUNTIME: 'node' } },
};

function suite(tag, runtimes = RUNTIMES) {
  const out = { floor: measure(() => run([process.execPath, '-e', '0'])), c: {}, n: {} };
  const each = (key, op, after) => {
    for (const [k, rt] of Object.entries(runtimes)) {
      const b = (...args) => run([...rt.argv, ...args], { env: rt.env });
      const batch = (input) => run([...rt.argv, 'batch', '-'], { env: rt.env, input });
      const t = `${tag}${k}`;
      out[k][key] = measure((i) => op({ b, batch, t, i }), after && ((i) => after({ b, batch, t, i })), k === 'n' ? NODE_RUNS : RUNS);
    }
  };
  each('version', ({ b }) => b('--version'));
  // the sh launcher in front of the executable, as `npm install`'s bin link runs it
  if (runtimes.n) out.c.versionLauncher = measure(() => run([launcher, '--version']));
  each('ls', ({ b }) => b('network', 'ls'));
  each('netCreateRm', ({ b, t, i }) => pair(b('network', 'create', `b${t}${i}`), b('network', 'rm', `b${t}${i}`)));
  const net = `bn${tag}`;
  run([compiled, 'network', 'create', net, '--subnet', tag === 'e' ? '10.250.0.0/16' : '10.251.0.0/16']);
  each('epAddRm', ({ b, t, i }) =>
    pair(b('endpoint', 'add', net, `e${t}${i}`, '--netns', `bx${t}${i}`, '--create-netns', '-p', `${20000 + i}:80`), b('endpoint', 'rm', net, `e${t}${i}`)),
  );
  run([compiled, 'endpoint', 'add', net, 'pub', '--netns', `bp${tag}`, '--create-netns']);
  each('publish1', ({ b, i }) => b('port', 'publish', net, 'pub', `${21000 + i}:80`), ({ b }) => b('port', 'unpublish', net, 'pub'));
  const specs = Array.from({ length: 100 }, (_, k) => `${22000 + k}:${1000 + k}`);
  each('publish100', ({ b }) => b('port', 'publish', net, 'pub', ...specs), ({ b }) => b('port', 'unpublish', net, 'pub'));
  each('check', ({ b }) => b('check'));
  const adds = (t) => Array.from({ length: 100 }, (_, k) => `endpoint add ${net} bulk${t}${k} --netns bb${t}${k} --create-netns -p ${23000 + k}:80`).join('\n');
  const rms = (t) => Array.from({ length: 100 }, (_, k) => `endpoint rm ${net} bulk${t}${k}`).join('\n');
  each('batch100', ({ batch, t }) => batch(adds(t)), ({ batch, t }) => batch(rms(t)));
  run([compiled, 'endpoint', 'rm', net, 'pub']);
  run([compiled, 'network', 'rm', net]);
  return out;
}

// 200 networks with 5 endpoints each, one published port per endpoint: brnet's, and the
// same shape for netavark.
const loadSubnet = (n) => `10.${100 + Math.floor(n / 64)}.${(n % 64) * 4}.0/22`;
function load() {
  const t0 = performance.now();
  const nets = [];
  for (let n = 0; n < 200; n++) nets.push(`network create load${n} --subnet ${loadSubnet(n)}`);
  run([compiled, 'batch', '-'], { input: nets.join('\n') });
  for (let n = 0; n < 200; n += 20) {
    const eps = [];
    for (let m = n; m < n + 20; m++) for (let e = 0; e < 5; e++) eps.push(`endpoint add load${m} ep${e} --netns l${m}-${e} --create-netns -p ${30000 + m * 5 + e}:80`);
    run([compiled, 'batch', '-'], { input: eps.join('\n') });
  }
  return performance.now() - t0;
}
function unload() {
  for (let n = 0; n < 200; n += 20) {
    const eps = [];
    for (let m = n; m < n + 20; m++) for (let e = 0; e < 5; e++) eps.push(`endpoint rm load${m} ep${e}`);
    run([compiled, 'batch', '-'], { input: eps.join('\n') });
  }
  run([compiled, 'batch', '-'], { input: Array.from({ length: 200 }, (_, n) => `network rm load${n}`).join('\n') });
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

const installed = (pkg) =>
  spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed');

/**
 * The peers, each in its own network namespace(s) inside the sandbox. Their scripts install
 * what is missing with apt-get, which cannot work in here (no network): so a peer whose
 * packages are missing is skipped, with the command that installs them.
 */
function peers() {
  const script = (name) => join(peersDir, name);
  const nvk = existsSync(script('netavark-peer.sh')) &&
    (existsSync('/usr/lib/podman/netavark') || spawnSync('sh', ['-c', 'command -v netavark']).status === 0);
  const cni = existsSync(script('cni-peer.sh')) && ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'].some((d) => existsSync(join(d, 'bridge')));
  const dockerPkgs = ['docker.io', 'busybox-static', 'iproute2', 'iptables'];
  const dk = existsSync(script('docker-peer.sh')) && dockerPkgs.every(installed);
  const nv = (e, ...a) => run(['bash', script('netavark-peer.sh'), ...a], { env: e });
  // The docker CLI talks to dockerd over its socket, as a user's does: dockerd does the
  // network work inside its namespace, the client needs no `ip netns exec`.
  const docker = (...a) => run(['docker', ...a], { env: { DOCKER_HOST: `unix://${join(env.DKPEER_DIR, 'docker.sock')}` } });
  const missing = [];
  if (!nvk) missing.push('netavark');
  if (!cni) missing.push('containernetworking-plugins');
  if (!dk) missing.push(...dockerPkgs.filter((p) => !installed(p)));
  const out = { empty: {}, loaded: {}, missing, dockerStarted: false };

  function measureNetavark(slot, tag) {
    slot.netavark = measure((i) => pair(nv(undefined, 'add', `c${tag}${i}`, String(24000 + i)), nv(undefined, 'del', `c${tag}${i}`)));
    // what `brnet batch` is measured against: 100 separate setups
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) nv(undefined, 'add', `m${tag}${i}`, String(26000 + i));
    slot.netavark100 = { ms: performance.now() - t0, procs: NaN };
    for (let i = 0; i < 100; i++) nv(undefined, 'del', `m${tag}${i}`);
  }
  const measureDocker = (slot, tag) => {
    slot.docker = measure((i) => pair(docker('network', 'create', `d${tag}${i}`), docker('network', 'rm', `d${tag}${i}`)));
  };

  return {
    out,
    /** whether anything has a loaded column: netavark or Docker */
    loads: nvk || dk,
    empty() {
      out.empty.floor = measure(() => run([process.execPath, '-e', '0']));
      if (nvk) {
        nv(undefined, 'setup-host');
        measureNetavark(out.empty, 'e');
      }
      if (cni) {
        const p = (...a) => run(['bash', script('cni-peer.sh'), ...a]);
        p('setup-host');
        out.empty.cni = measure((i) => pair(p('add', `c${i}`, String(25000 + i)), p('del', `c${i}`)));
        p('teardown');
      }
      if (dk) {
        out.dockerStarted = true;
        try {
          run(['bash', script('docker-peer.sh'), 'start']);
          measureDocker(out.empty, 'e');
        } catch (err) {
          out.dockerError = String(err.message).split('\n').slice(0, 12).join('\n');
        }
      }
    },
    /** The same load as brnet's: 1000 netavark containers with a port each on 200 networks;
     * Docker gets the 200 networks only: starting a thousand containers is beyond this
     * bench's time, and network create + rm, what Docker is compared on, sees the networks. */
    load() {
      const t0 = performance.now();
      if (nvk) {
        for (let n = 1; n <= 200; n++) {
          const e = { NVK_NET: String(n) };
          for (let k = 0; k < 5; k++) nv(e, 'add', `l${n}-${k}`, String(30000 + n * 5 + k));
        }
      }
      if (dk && !out.dockerError) for (let n = 0; n < 200; n++) docker('network', 'create', '--subnet', loadSubnet(n), `load${n}`);
      return performance.now() - t0;
    },
    loaded() {
      out.loaded.floor = measure(() => run([process.execPath, '-e', '0']));
      if (nvk) measureNetavark(out.loaded, 'l');
      if (dk && !out.dockerError) measureDocker(out.loaded, 'l');
    },
    stop() {
      // Everything else goes with the sandbox's namespaces and stateDir; dockerd would not.
      if (!out.dockerStarted) return;
      const r = spawnSync('bash', [script('docker-peer.sh'), 'stop'], { env, encoding: 'utf8' });
      if (r.status !== 0) process.stderr.write(`bench: docker-peer.sh stop failed (${r.status}): ${r.stderr}`);
    },
  };
}

const f = (ms) => (!Number.isFinite(ms) ? '-' : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const mib = (m) => (Number.isFinite(m?.mib) ? m.mib.toFixed(1) : '-');
const x = (a, b) => (a && b ? (a.ms / b.ms).toFixed(2) : '-');
const names = {
  version: 'brnet --version',
  versionLauncher: '--version via bin/brnet',
  ls: 'network ls',
  netCreateRm: 'network create + rm',
  epAddRm: 'endpoint add -p + rm',
  publish1: 'port publish (1 port)',
  publish100: 'port publish (100 ports)',
  check: 'check',
  batch100: 'batch: 100 endpoint add -p',
};

/** The nftables backend beside iptables: compiled executable, the same operations and hosts. */
function reportBackends(empty, loaded, nft, migrateMs) {
  console.log(`\nfirewall backends, compiled dist/brnet (times in ms); nftables/iptables < 1 is nftables faster`);
  console.log(`live migration of the loaded host: config set firewall-backend nftables took ${f(migrateMs)} ms\n`);
  const W = 28;
  console.log(`${'operation'.padEnd(W)} ${'iptables'.padStart(15)} ${'nftables'.padStart(15)}   ${'nft/ipt'.padStart(11)}   ${'procs ipt'.padStart(9)} ${'nft'.padStart(5)}`);
  console.log(`${''.padEnd(W)} ${'empty  loaded'.padStart(15)} ${'empty  loaded'.padStart(15)}   ${'empty loaded'.padStart(11)}   ${'e/l'.padStart(9)} ${'e/l'.padStart(5)}`);
  for (const k of ['ls', 'netCreateRm', 'epAddRm', 'publish1', 'publish100', 'check', 'batch100']) {
    const [ie, il, ne, nl] = [empty.c[k], loaded.c[k], nft.empty.c[k], nft.loaded.c[k]];
    console.log(`${names[k].padEnd(W)} ${f(ie.ms).padStart(7)} ${f(il.ms).padStart(7)} ${f(ne.ms).padStart(7)} ${f(nl.ms).padStart(7)}   ${x(ne, ie).padStart(5)} ${x(nl, il).padStart(5)}   ${`${ie.procs}/${il.procs}`.padStart(9)} ${`${ne.procs}/${nl.procs}`.padStart(5)}`);
  }
}

function report(empty, loaded, loadMs, settled, p) {
  const drift = loaded.floor.ms / empty.floor.ms;
  const group = (e, l) => {
    if (!e || !l) return `${'-'.padStart(7)} ${'-'.padStart(7)} ${''.padStart(6)} ${''.padStart(6)}`;
    const ratio = l.ms / e.ms;
    return `${f(e.ms).padStart(7)} ${f(l.ms).padStart(7)} ${ratio.toFixed(2).padStart(6)} ${(ratio / drift).toFixed(2).padStart(6)}`;
  };
  const procs = (k) => {
    const [ce, cl, ne, nl] = [empty.c[k], loaded.c[k], empty.n[k], loaded.n[k]];
    const s = `${ce.procs}/${cl.procs}`;
    return ne && (ne.procs !== ce.procs || nl.procs !== cl.procs) ? `${s}*` : s;
  };
  console.log(`\nbrnet benchmark: median of ${RUNS} runs${NODE_RUNS !== RUNS ? ` (Node fallback: ${NODE_RUNS})` : ''} (times in ms), inside a private namespace (${new Date().toISOString()})`);
  console.log('compiled = dist/brnet, run directly, as an installed brnet is (the bench runs a copy of bin/ and dist/ taken at its start)');
  console.log(`node     = BRNET_RUNTIME=node bin/brnet (sh launcher -> node ${process.version} bin/brnet.js -> dist/cli.js)`);
  console.log(`loaded host = 200 networks, 1000 endpoints, 1000 published ports (built in ${(loadMs / 1000).toFixed(1)} s, then ${settled.toFixed(0)} s for the kernel to settle)\n`);
  const W = 28;
  console.log(`${''.padEnd(W)} ${'compiled dist/brnet'.padEnd(29)}   ${'Node fallback'.padEnd(29)}   ${'procs'.padStart(7)}   peak MiB, loaded`);
  console.log(`${'operation'.padEnd(W)} ${'empty  loaded  ratio    adj'.padStart(29)}   ${'empty  loaded  ratio    adj'.padStart(29)}   ${'e/l'.padStart(7)}   compiled   node`);
  const row = (name, ce, cl, ne, nl, pr, mc, mn) =>
    console.log(`${name.padEnd(W)} ${group(ce, cl)}   ${group(ne, nl)}   ${pr.padStart(7)}   ${mc.padStart(8)} ${mn.padStart(6)}`);
  row('node -e 0 (floor)', empty.floor, loaded.floor, empty.floor, loaded.floor, '0/0', mib(loaded.floor), mib(loaded.floor));
  for (const k of Object.keys(names)) row(names[k], empty.c[k], loaded.c[k], empty.n[k], loaded.n[k], procs(k), mib(loaded.c[k]), mib(loaded.n[k]));
  console.log(`\nratio = loaded / empty; adj = ratio / (loaded floor / empty floor) = ratio / ${drift.toFixed(2)}, the machine's own drift divided out`);
  if (Object.keys(names).some((k) => procs(k).endsWith('*'))) console.log('* the Node fallback spawned a different number of processes');
  console.log(hasTime
    ? 'peak MiB = max RSS (GNU time %M) of the call(s), in the untimed first run of each operation'
    : 'peak MiB: GNU time is missing (apt-get install time), so the column is empty');

  const peakOf = (rt) => {
    let best = null;
    for (const k of Object.keys(names)) if (Number.isFinite(loaded[rt][k]?.mib) && (!best || loaded[rt][k].mib > best.mib)) best = { mib: loaded[rt][k].mib, k };
    return best;
  };
  const memLine = (b) => (b ? `${b.mib.toFixed(1)} MiB (${names[b.k]}): ${b.mib <= MEM_LIMIT_MIB ? 'within' : 'over'} ${MEM_LIMIT_MIB} MiB` : '-');
  const both = (a, b) => `${a.padStart(6)}   [node ${b}]`;
  console.log('\ntargets: compiled [Node fallback]');
  console.log(`  ${'brnet --version / node -e 0 (empty host)'.padEnd(52)} ${both(x(empty.c.version, empty.floor), x(empty.n.version, empty.floor))}`);
  console.log(`  ${'network ls / node -e 0 (loaded host)'.padEnd(52)} ${both(x(loaded.c.ls, loaded.floor), x(loaded.n.ls, loaded.floor))}`);
  console.log(`  ${'peak memory, max over the operations (loaded host)'.padEnd(52)} ${memLine(peakOf('c'))}   [node ${memLine(peakOf('n'))}]`);

  if (!p) {
    console.log('\n(peers: run `npm run bench -- --peers` with netavark, containernetworking-plugins, docker.io and busybox-static installed)');
    return;
  }
  const { out } = p;
  console.log('\npeers, each in its own namespace in the sandbox; "loaded" = after brnet\'s load was removed and the peer got its own:');
  console.log('netavark 200 networks + 1000 containers with a published port each; Docker 200 networks and no containers');
  console.log(`${''.padEnd(40)} ${'empty'.padStart(8)} ${'loaded'.padStart(8)}`);
  const prow = (name, k) => console.log(`${name.padEnd(40)} ${f(out.empty[k]?.ms).padStart(8)} ${f(out.loaded[k]?.ms).padStart(8)}`);
  prow('node -e 0 (floor, at the same time)', 'floor');
  if (out.empty.netavark) {
    prow('netavark setup + teardown (1 port)', 'netavark');
    prow('netavark: 100 setups', 'netavark100');
  }
  if (out.empty.cni) prow('CNI bridge+portmap+firewall add + del', 'cni');
  if (out.empty.docker) prow('docker network create + rm', 'docker');
  if (out.peerLoadMs) console.log(`(peers' load built in ${(out.peerLoadMs / 1000).toFixed(1)} s, then ${out.peerSettled.toFixed(0)} s to settle)`);
  if (out.missing.length) console.log(`skipped, not installed: ${out.missing.join(' ')} (apt-get install ${out.missing.join(' ')})`);
  if (out.dockerError) console.log(`Docker: dockerd did not work in the sandbox, so no Docker figures:\n${out.dockerError}`);

  console.log('\ntargets against peers (brnet / peer on the same kind of host): compiled [Node fallback]');
  const vs = (label, k, peer, note = '') => {
    if (!out.empty[peer]) return;
    const cell = (h) => (out[h][peer] ? `${h} ${x((h === 'empty' ? empty : loaded).c[k], out[h][peer])} [${x((h === 'empty' ? empty : loaded).n[k], out[h][peer])}]` : `${h} -`);
    console.log(`  ${label.padEnd(52)} ${cell('empty')}   ${cell('loaded')}${note}`);
  };
  vs('network create + rm / Docker\'s', 'netCreateRm', 'docker', '   (Docker loaded: networks only)');
  vs('endpoint add -p + rm / netavark setup + teardown', 'epAddRm', 'netavark');
  vs('endpoint add -p + rm / CNI add + del', 'epAddRm', 'cni');
  if (out.empty.netavark100) {
    const fast = (h) => {
      const s = (h === 'empty' ? empty : loaded);
      const nv = out[h].netavark100;
      return nv ? `${h} ${(nv.ms / s.c.batch100.ms).toFixed(1)}x faster [${(nv.ms / s.n.batch100.ms).toFixed(1)}x]` : `${h} -`;
    };
    console.log(`  ${'batch of 100 vs 100 netavark setups'.padEnd(52)} ${fast('empty')}   ${fast('loaded')}`);
  }
}

/** The userland proxy on the empty host, with the compiled executable (iptables backend). */
function proxyBench() {
  const b = (...args) => run([compiled, ...args]);
  const out = {};
  let t0 = performance.now();
  b('config', 'set', 'userland-proxy', 'true');
  out.enableMs = performance.now() - t0;
  b('network', 'create', 'bpx', '--subnet', '10.252.0.0/24');
  b('endpoint', 'add', 'bpx', 'a', '--netns', 'bpxa', '--create-netns');
  // -p on an IPv4-only endpoint with the proxy on binds 0.0.0.0 and :: (two proxies per port).
  out.publish1 = measure((i) => b('port', 'publish', 'bpx', 'a', `${24000 + i}:80`), () => b('port', 'unpublish', 'bpx', 'a'));
  const range = '25000-25099:25000-25099';
  t0 = performance.now();
  b('port', 'publish', 'bpx', 'a', range);
  out.range = { ms: performance.now() - t0 };
  const pids = JSON.parse(spawnSync(compiled, ['port', 'ls', 'bpx', 'a', '--json'], { env, encoding: 'utf8' }).stdout)
    .map((x) => x.proxy?.pid)
    .filter(Boolean);
  // Rss counts the executable's pages that every proxy shares; Pss shares them out, and
  // Private is what each proxy adds.
  const mem = pids.map((pid) => {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
    return { rss: kb('Rss'), pss: kb('Pss'), priv: kb('Private_Clean') + kb('Private_Dirty') };
  });
  const sum = (k) => mem.reduce((a, m) => a + m[k], 0);
  out.range.proxies = pids.length;
  out.range.mem = { rss: sum('rss'), pss: sum('pss'), priv: sum('priv') };
  out.check = measure(() => b('check'));
  t0 = performance.now();
  b('port', 'unpublish', 'bpx', 'a', range);
  out.range.unpublishMs = performance.now() - t0;
  // Latency: an echo server in the endpoint, a client on the host making 200 connections
  // one after the other (connect, 16 bytes there and back, close), through the proxy on
  // 127.0.0.1 and through kernel NAT on the gateway's address.
  b('port', 'publish', 'bpx', 'a', '26000:7');
  const echo = spawnSync('sh', ['-c', `ip netns exec bpxa ${process.execPath} -e 'require("net").createServer((c)=>c.pipe(c)).listen(7,()=>console.log("up"))' >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  spawnSync('sleep', ['0.5']);
  const client = `const net=require("net");const [h,p]=process.argv.slice(1);const xs=[];(async()=>{for(let i=0;i<200;i++){const t=performance.now();await new Promise((ok,no)=>{const c=net.connect(+p,h,()=>c.end("0123456789abcdef"));let n=0;c.on("data",(d)=>n+=d.length);c.on("close",()=>n===16?ok():no(new Error("short")));c.on("error",no)});xs.push(performance.now()-t)}xs.sort((a,b)=>a-b);console.log(JSON.stringify({p50:xs[100],p99:xs[197]}))})()`;
  const lat = (h) => JSON.parse(spawnSync(process.execPath, ['-e', client, h, '26000'], { encoding: 'utf8' }).stdout || '{}');
  out.latProxy = lat('127.0.0.1');
  out.latNat = lat('10.252.0.1');
  spawnSync('kill', [echo.stdout.trim()]);
  b('port', 'unpublish', 'bpx', 'a');
  t0 = performance.now();
  b('config', 'set', 'userland-proxy', 'false');
  out.disableMs = performance.now() - t0;
  b('network', 'rm', 'bpx', '--force');
  return out;
}

function reportProxy(x) {
  const m = x.range.mem;
  const per = (v) => (v / x.range.proxies / 1024).toFixed(1);
  console.log('\nuserland proxy, compiled dist/brnet, empty host, iptables (times in ms)');
  console.log(`  config set userland-proxy true / false       ${f(x.enableMs)} / ${f(x.disableMs)}`);
  console.log(`  port publish of one port (2 proxies: 0.0.0.0 and ::) ${f(x.publish1.ms)}   procs ${x.publish1.procs}`);
  console.log(`  port publish of a 100-port range (${x.range.proxies} proxies)   ${f(x.range.ms)}, unpublish ${f(x.range.unpublishMs)}`);
  console.log(`  check with those ${x.range.proxies} proxies                      ${f(x.check.ms)}`);
  console.log(`  memory of the ${x.range.proxies} proxies: Rss ${(m.rss / 1024).toFixed(0)} MiB, Pss ${(m.pss / 1024).toFixed(0)} MiB, private ${(m.priv / 1024).toFixed(0)} MiB`);
  console.log(`  per proxy: Rss ${per(m.rss)} MiB, Pss ${per(m.pss)} MiB, private ${per(m.priv)} MiB (Rss counts the shared executable in each)`);
  const l = (v) => (v?.p50 === undefined ? '-' : `p50 ${v.p50.toFixed(2)} p99 ${v.p99.toFixed(2)}`);
  console.log(`  TCP connection (connect, 16 B echo, close) via the proxy ${l(x.latProxy)}; via kernel NAT ${l(x.latNat)}`);
}

let p = null;
if (proxyOnly) {
  try {
    reportProxy(proxyBench());
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  run([compiled, '--version']);
  p = withPeers ? peers() : null;
  const empty = suite('e');
  p?.empty();
  const loadMs = load();
  const settled = settle(empty.floor.ms);
  const loaded = suite('l');
  // The same host under the nftables backend: migrated live (timed), loaded first, then empty.
  const compiledOnly = { c: RUNTIMES.c };
  const t0 = performance.now();
  run([compiled, 'config', 'set', 'firewall-backend', 'nftables']);
  const migrateMs = performance.now() - t0;
  const nft = { loaded: suite('L', compiledOnly) };
  unload();
  nft.empty = suite('E', compiledOnly);
  run([compiled, 'config', 'set', 'firewall-backend', 'iptables']);
  if (p?.loads) {
    p.out.peerLoadMs = p.load();
    p.out.peerSettled = settle(empty.floor.ms);
    p.loaded();
  }
  const proxy = proxyBench();
  report(empty, loaded, loadMs, settled, p);
  reportBackends(empty, loaded, nft, migrateMs);
  reportProxy(proxy);
} finally {
  p?.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
