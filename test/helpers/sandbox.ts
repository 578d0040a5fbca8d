/**
 * A private, throw-away network + mount namespace to run brnet in.
 *
 * Everything network-related in the system tests happens inside a Sandbox:
 * the machine's own network namespace is never touched. A sandbox is held
 * alive by a `sleep infinity` process started with
 * `unshare --net --mount --propagation private`; commands are run in it with
 * `nsenter -t <pid> -n -m`. /run/netns is a private tmpfs inside the sandbox
 * and /sys is a sysfs mounted from inside it, so `ip netns add`, sysfs reads
 * and writes all stay inside.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command after this long (default 15 s); the result then has code 124. */
  timeoutMs?: number;
  /** Written to the command's stdin (stdin is closed in any case). */
  input?: string;
  /** Extra environment variables (merged over process.env). */
  env?: Record<string, string>;
}

export interface BrnetOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface BrnetResult extends ExecResult {
  /** JSON.parse(stdout); throws a descriptive error if stdout is not JSON. */
  json(): any;
}

export interface OutsideClient {
  ns: string;
  ip: string;
  hostIp: string;
  ip6: string;
  hostIp6: string;
}

/** A long-running process started inside a sandbox; see Sandbox.spawnBackground. */
export interface BackgroundProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (128+signal when killed) once it has exited. */
  readonly exited: Promise<number>;
  /** SIGKILLs the process (and its process group) and waits for it to exit. Idempotent. */
  kill(): Promise<void>;
}

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The launcher users run: it starts from the start-up snapshot, or from dist/cli.js. */
export const BRNET_BIN = path.join(REPO_ROOT, 'bin', 'brnet');

const DEFAULT_TIMEOUT_MS = 15_000;
const SIGNALS = os.constants.signals as Record<string, number>;

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * `describe` for tests that need root. Skipped when not root, except in CI
 * (`CI` set): there the tests run anyway and fail loudly instead of silently
 * passing as "skipped".
 */
export type Backend = 'iptables' | 'nftables';
/** The firewall backends the traffic tests run against, each in sandboxes of its own. */
export const BACKENDS: Backend[] = ['iptables', 'nftables'];

export const describeRoot: ReturnType<typeof describe.skipIf> =
  process.env.CI && !isRoot()
    ? (describe as unknown as ReturnType<typeof describe.skipIf>)
    : describe.skipIf(!isRoot());

// ---------------------------------------------------------------------------
// process bookkeeping: whatever happens, leave nothing behind

const liveSandboxes = new Set<Sandbox>();
let exitHandlerInstalled = false;

function killAllSync(): void {
  for (const sb of liveSandboxes) sb.killSync();
  liveSandboxes.clear();
}

/**
 * 'exit' alone is not enough: vitest stops its fork workers with SIGTERM
 * (then SIGKILL), which skips 'exit' handlers. On a terminating signal we
 * clean up and then re-raise it, so the default action still happens unless
 * somebody else handles it.
 */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** kill(2) that ignores ESRCH and refuses the dangerous pids 0, ±1 (kill(-1) = everything). */
function tryKill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!Number.isInteger(pid) || Math.abs(pid) <= 1 || pid === process.pid || pid === -process.pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}

function readFileOrNull(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  // A zombie still has a /proc entry; treat it as gone.
  const stat = readFileOrNull(`/proc/${pid}/stat`);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** All pids whose net or mnt namespace link is one of `nsLinks` (e.g. "net:[4026532]"). */
function pidsInNamespaces(nsLinks: Set<string>): number[] {
  const out: number[] = [];
  if (nsLinks.size === 0) return out;
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    for (const kind of ['net', 'mnt']) {
      const link = readlinkOrNull(`/proc/${pid}/ns/${kind}`);
      if (link !== null && nsLinks.has(link)) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (SIGNALS[signal] ?? 0);
  return -1;
}

function mergedEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...(extra ?? {}) };
}

interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** The complete environment of the child. */
  env: NodeJS.ProcessEnv;
}

/**
 * Runs argv to completion and collects its output. Never throws on a non-zero
 * exit. The child gets its own process group so that a timeout kills every
 * process it started. Resolves once the main process has exited; output of
 * background processes it left behind (which still hold the pipes) is not
 * waited for beyond a short grace period.
 */
function run(argv: string[], opts: RunOptions): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: opts.env,
      });
    } catch (err) {
      resolve({ code: 127, stdout: '', stderr: String(err) });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => {
      /* EPIPE when the command does not read its input */
    });
    child.stdin!.end(opts.input ?? '');

    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        tryKill(-child.pid);
        tryKill(child.pid);
      }
    }, timeoutMs);

    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve({
        code: timedOut ? 124 : code,
        stdout,
        stderr: timedOut ? `${stderr}\n[timed out after ${timeoutMs} ms: ${argv.join(' ')}]` : stderr,
      });
    };

    child.on('error', (err) => {
      stderr += String(err);
      finish(127);
    });
    child.on('exit', (code, signal) => {
      const c = exitCode(code, signal);
      // Normally 'close' follows right away; if something left in the
      // background still holds stdout/stderr, do not wait for it.
      const grace = setTimeout(() => finish(c), 200);
      child.on('close', () => {
        clearTimeout(grace);
        finish(c);
      });
    });
  });
}

// ---------------------------------------------------------------------------

export class Sandbox {
  /** pid of the `sleep infinity` holding the namespaces. */
  readonly pid: number;
  /** A fresh, empty directory for BRNET_STATE_DIR. */
  readonly stateDir: string;

  private readonly holder: ChildProcess;
  private readonly holderExited: Promise<void>;
  private readonly background = new Set<BackgroundProcess>();
  /** nsfs links ("net:[…]", "mnt:[…]") of the sandbox and the namespaces created inside it. */
  private destroyed = false;
  private destroying: Promise<void> | null = null;

  private constructor(holder: ChildProcess, stateDir: string) {
    this.holder = holder;
    this.pid = holder.pid!;
    this.stateDir = stateDir;
    this.holderExited = new Promise((resolve) => {
      if (holder.exitCode !== null || holder.signalCode !== null) resolve();
      else holder.once('exit', () => resolve());
    });
  }

  /** Which firewall backend brnet uses in this sandbox (see Sandbox.create). */
  backend: Backend = 'iptables';

  /**
   * A fresh sandbox; with `backend: 'nftables'` its state dir is set to the nftables backend
   * before the test's first command, so that the same test runs against either backend.
   */
  static async create(opts: { backend?: Backend } = {}): Promise<Sandbox> {
    const sb = await Sandbox.createBare();
    if (opts.backend === 'nftables') {
      await sb.brnetOk(['config', 'set', 'firewall-backend', 'nftables']);
      sb.backend = 'nftables';
    }
    return sb;
  }

  private static async createBare(): Promise<Sandbox> {
    installExitHandler();
    const holder = spawn('unshare', ['--net', '--mount', '--propagation', 'private', 'sleep', 'infinity'], {
      stdio: 'ignore',
      detached: false,
    });
    const spawnError = new Promise<Error>((resolve) => holder.once('error', resolve));
    if (holder.pid === undefined) {
      throw new Error(`cannot start sandbox holder: ${await spawnError}`);
    }
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brnet-test-'));
    const sb = new Sandbox(holder, stateDir);
    liveSandboxes.add(sb);
    try {
      await sb.waitUntilIsolated();
      const setup = await sb.sh(
        'mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && ' +
          // sysfs shows the network namespace of whoever mounts it: without
          // this, /sys/class/net inside the sandbox would be the host's.
          'mount -t sysfs sysfs /sys && ' +
          'ip link set lo up',
      );
      if (setup.code !== 0) {
        throw new Error(`sandbox setup failed (code ${setup.code}): ${setup.stderr}${setup.stdout}`);
      }
    } catch (err) {
      await sb.destroy();
      throw err;
    }
    return sb;
  }

  /**
   * Waits (≤ 5 s) until the holder is in its own network namespace AND has
   * exec'ed `sleep`: unshare(1) switches namespaces first and only then makes
   * the mount tree private; mounting before that could propagate to the host.
   */
  private async waitUntilIsolated(): Promise<void> {
    const selfNet = fs.readlinkSync('/proc/self/ns/net');
    const selfMnt = fs.readlinkSync('/proc/self/ns/mnt');
    const deadline = Date.now() + 5_000;
    for (;;) {
      if (this.holder.exitCode !== null || this.holder.signalCode !== null) {
        throw new Error(
          `sandbox holder exited early (code ${this.holder.exitCode}, signal ${this.holder.signalCode}); ` +
            'is unshare available and are we root?',
        );
      }
      const net = readlinkOrNull(`/proc/${this.pid}/ns/net`);
      const mnt = readlinkOrNull(`/proc/${this.pid}/ns/mnt`);
      const comm = readFileOrNull(`/proc/${this.pid}/comm`)?.trim();
      const mountinfo = readFileOrNull(`/proc/${this.pid}/mountinfo`);
      if (
        net !== null &&
        net !== selfNet &&
        mnt !== null &&
        mnt !== selfMnt &&
        comm === 'sleep' &&
        mountinfo !== null &&
        !/\sshared:\d+/.test(mountinfo)
      ) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`sandbox holder ${this.pid} did not get isolated namespaces within 5 s`);
      }
      await sleep(20);
    }
  }

  private assertAlive(): void {
    if (this.destroyed) throw new Error('Sandbox already destroyed');
  }

  /** argv prefix that runs a command inside the sandbox. */
  nsenterArgv(): string[] {
    return ['nsenter', '-t', String(this.pid), '-n', '-m', '--'];
  }

  /** Runs `sh -c cmd` inside the sandbox. Never throws on a non-zero exit; code 124 on timeout. */
  async sh(cmd: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(['sh', '-c', cmd], opts);
  }

  /** Runs argv (no shell) inside the sandbox. Never throws on a non-zero exit; code 124 on timeout. */
  async exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    this.assertAlive();
    return run([...this.nsenterArgv(), ...argv], {
      timeoutMs: opts?.timeoutMs,
      input: opts?.input,
      env: mergedEnv(opts?.env),
    });
  }

  /** Runs `sh -c cmd` inside the named namespace `ns` (created in the sandbox). */
  async inNs(ns: string, cmd: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(['ip', 'netns', 'exec', ns, 'sh', '-c', cmd], opts);
  }

  /** argv that runs argv in namespace `ns` (null = the sandbox host), without the nsenter prefix. */
  static nsArgv(ns: string | null, argv: string[]): string[] {
    return ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv];
  }

  /** Environment for the brnet CLI: no vitest/NODE_ENV leakage, production mode, our state dir. */
  brnetEnv(extra?: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined) continue;
      if (k === 'NODE_ENV' || k === 'TEST' || k === 'FORCE_COLOR' || k === 'VITEST' || k.startsWith('VITEST_')) {
        continue;
      }
      env[k] = v;
    }
    return {
      ...env,
      NODE_ENV: 'production',
      BRNET_STATE_DIR: this.stateDir,
      NO_COLOR: '1',
      ...(extra ?? {}),
    };
  }

  /** Runs `bin/brnet ...args` inside the sandbox. Never throws on a non-zero exit. */
  async brnet(args: string[], opts: BrnetOptions = {}): Promise<BrnetResult> {
    this.assertAlive();
    const argv = [...this.nsenterArgv(), BRNET_BIN, ...args];
    const res = await run(argv, { timeoutMs: opts.timeoutMs, input: opts.input, env: this.brnetEnv(opts.env) });
    return {
      ...res,
      json() {
        try {
          return JSON.parse(res.stdout);
        } catch (err) {
          throw new Error(
            `brnet ${args.join(' ')}: stdout is not JSON (${(err as Error).message})\n` +
              `code: ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`,
          );
        }
      },
    };
  }

  /** Like brnet() but throws (with args, code, stdout and stderr) unless the exit code is 0. */
  async brnetOk(args: string[], opts?: BrnetOptions): Promise<BrnetResult> {
    const res = await this.brnet(args, opts);
    if (res.code !== 0) {
      throw new Error(
        `brnet ${JSON.stringify(args)} exited with code ${res.code}\n` +
          `stdout:\n${res.stdout}\nstderr:\n${res.stderr}`,
      );
    }
    return res;
  }

  /** `ip -j ...args` inside the sandbox, parsed ([] on empty output). Throws on failure. */
  async ipJson(args: string[]): Promise<any> {
    const res = await this.exec(['ip', '-j', ...args]);
    if (res.code !== 0) {
      throw new Error(`ip -j ${args.join(' ')} failed (code ${res.code}): ${res.stderr}`);
    }
    const text = res.stdout.trim();
    return text === '' ? [] : JSON.parse(text);
  }

  /**
   * `iptables-save` (or `ip6tables-save`) inside the sandbox, normalised for
   * comparison: comment lines dropped, counters zeroed, trailing blanks trimmed.
   */
  async iptablesSave(family: 4 | 6 = 4): Promise<string> {
    const res = await this.exec([family === 6 ? 'ip6tables-save' : 'iptables-save']);
    if (res.code !== 0) {
      throw new Error(`ip${family === 6 ? '6' : ''}tables-save failed (code ${res.code}): ${res.stderr}`);
    }
    return normalizeIptablesSave(res.stdout);
  }

  /**
   * brnet's rules as the sandbox's backend holds them, for "nothing changed" comparisons:
   * iptables-save of both families, or brnet's nftables tables with counters zeroed.
   */
  async rulesText(): Promise<string> {
    if (this.backend === 'iptables') return `${await this.iptablesSave(4)}\n${await this.iptablesSave(6)}`;
    const r = await this.sh('nft list table ip brnet 2>/dev/null; nft list table ip6 brnet 2>/dev/null; true');
    return r.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter');
  }

  /**
   * Creates namespace `name` with a veth pair up0 (sandbox side, 198.18.0.1/24
   * [+ fd98::1/64]) <-> eth0 (client side, 198.18.0.2/24 [+ fd98::2/64]) and a
   * default route via the sandbox. One outside client per sandbox (the host
   * side is always called up0).
   */
  async addOutsideClient(name = 'client', opts: { v6?: boolean } = {}): Promise<OutsideClient> {
    const q = shellQuote(name);
    const cmds = [
      `ip netns add ${q}`,
      `ip link add up0 type veth peer name eth0 netns ${q}`,
      'ip addr add 198.18.0.1/24 dev up0',
      opts.v6 ? 'ip -6 addr add fd98::1/64 dev up0 nodad' : '',
      'ip link set up0 up',
      `ip -n ${q} link set lo up`,
      `ip -n ${q} addr add 198.18.0.2/24 dev eth0`,
      opts.v6 ? `ip -n ${q} -6 addr add fd98::2/64 dev eth0 nodad` : '',
      `ip -n ${q} link set eth0 up`,
      `ip -n ${q} route add default via 198.18.0.1`,
      opts.v6 ? `ip -n ${q} -6 route add default via fd98::1` : '',
    ].filter(Boolean);
    const res = await this.sh(`set -e\n${cmds.join('\n')}`);
    if (res.code !== 0) {
      throw new Error(`addOutsideClient(${name}) failed (code ${res.code}): ${res.stderr}`);
    }
    return { ns: name, ip: '198.18.0.2', hostIp: '198.18.0.1', ip6: 'fd98::2', hostIp6: 'fd98::1' };
  }

  /** ping from namespace `fromNs` (null = sandbox host); `-c 1 -W 1` by default. */
  async ping(fromNs: string | null, addr: string, opts: { count?: number; timeoutS?: number } = {}): Promise<boolean> {
    const count = opts.count ?? 1;
    const timeoutS = opts.timeoutS ?? 1;
    const argv = Sandbox.nsArgv(fromNs, ['ping', '-n', '-q', '-c', String(count), '-W', String(timeoutS), addr]);
    const res = await this.exec(argv, { timeoutMs: (count + timeoutS) * 1000 + 5_000 });
    return res.code === 0;
  }

  /**
   * Starts argv in the background inside the sandbox (prefix it with
   * Sandbox.nsArgv for a named namespace). destroy() kills it.
   */
  spawnBackground(argv: string[], opts: { env?: Record<string, string> } = {}): BackgroundProcess {
    this.assertAlive();
    const full = [...this.nsenterArgv(), ...argv];
    const child = spawn(full[0]!, full.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: mergedEnv(opts.env),
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => resolve(exitCode(code, signal)));
      child.once('error', (e) => {
        err += String(e);
        resolve(127);
      });
    });
    const pid = child.pid ?? -1;
    const bg: BackgroundProcess = {
      pid,
      child,
      stdout: () => out,
      stderr: () => err,
      exited,
      kill: async () => {
        // Only while our child has not been reaped: afterwards its pid (and
        // process group id) may belong to somebody else. Stragglers are
        // found by namespace in destroy().
        if (pid > 0 && child.exitCode === null && child.signalCode === null) {
          tryKill(-pid);
          tryKill(pid);
        }
        await Promise.race([exited, sleep(5_000)]);
        child.stdout!.destroy();
        child.stderr!.destroy();
        this.background.delete(bg);
      },
    };
    // Stays registered until kill(), even after exiting: its process group
    // may still have members.
    this.background.add(bg);
    return bg;
  }

  /**
   * The nsfs links of the holder's namespaces and of the named namespaces in the sandbox's
   * private /run/netns (seen through /proc/<holder>/root), read now, never remembered: a
   * namespace freed since (a test deleted it) may have its inode number reused by another
   * sandbox's namespace, and killing by a stale number once took down a sandbox of a test
   * file running alongside. Empty once the holder is gone, for the same reason.
   * Synchronous: usable from exit handlers.
   */
  private liveNamespaceLinks(): Set<string> {
    const links = new Set<string>();
    if (this.holder.exitCode !== null || this.holder.signalCode !== null) return links;
    for (const kind of ['net', 'mnt']) {
      const l = readlinkOrNull(`/proc/${this.pid}/ns/${kind}`);
      if (l) links.add(l);
    }
    const dir = `/proc/${this.pid}/root/run/netns`;
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {}
    for (const name of names) {
      try {
        links.add(`net:[${fs.statSync(path.join(dir, name)).ino}]`);
      } catch {
        /* not (yet) a namespace mount */
      }
    }
    return links;
  }

  /** Synchronous last-resort cleanup (process 'exit' handler): SIGKILL everything we know of. */
  killSync(): void {
    const namespaces = this.liveNamespaceLinks();
    for (const bg of this.background) {
      if (bg.pid > 0 && bg.child.exitCode === null && bg.child.signalCode === null) {
        tryKill(-bg.pid);
        tryKill(bg.pid);
      }
    }
    for (const pid of pidsInNamespaces(namespaces)) tryKill(pid);
    tryKill(this.pid);
    try {
      fs.rmSync(this.stateDir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }

  /**
   * Kills every process started through this sandbox (and any other process
   * still inside its namespaces), SIGKILLs the holder, waits for it to exit
   * and removes the state dir. Idempotent.
   */
  async destroy(): Promise<void> {
    if (!this.destroying) this.destroying = this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const namespaces = this.liveNamespaceLinks();
    this.destroyed = true;
    await Promise.all([...this.background].map((bg) => bg.kill()));
    // Anything else still living in our namespaces (e.g. started by a test
    // with `sh -c '... &'`, or by brnet itself).
    const strays = pidsInNamespaces(namespaces).filter((p) => p !== this.pid);
    for (const p of strays) tryKill(p);
    tryKill(this.pid);
    await Promise.race([this.holderExited, sleep(5_000)]);
    const deadline = Date.now() + 5_000;
    while ([this.pid, ...strays].some(pidAlive) && Date.now() < deadline) await sleep(20);
    fs.rmSync(this.stateDir, { recursive: true, force: true });
    liveSandboxes.delete(this);
    if (pidAlive(this.pid)) throw new Error(`sandbox holder ${this.pid} did not exit`);
  }
}

export function normalizeIptablesSave(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]').trimEnd())
    .filter((l, i, arr) => l !== '' || i < arr.length - 1)
    .join('\n');
}

/**
 * brnet's marks without their instance id ("brnet@0a1b2c3d:web" -> "brnet:web"): for tests
 * about the layout of rules and devices, which read the same for every state dir.
 */
export function unmark(text: string): string {
  return text.replace(/"brnet@[0-9a-f]{8}"|\bbrnet@[0-9a-f]{8}\b/g, 'brnet');
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_.:\/=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
