// The only place in brnet that starts processes. argv arrays only, never a shell string,
// so no user input can ever be interpreted by a shell. Every call has a timeout, can feed
// stdin (for `ip -batch -` and `iptables-restore`), is traced with --debug, and fails with
// one BrnetError that names the command and its trimmed stderr.
//
// node:child_process rather than execa: the wrapper needs four of execa's features (argv,
// stdin, timeout, captured output), and execa's module graph would be loaded by every brnet
// call that spawns anything, for nothing these few lines do not already do.
import { spawn } from 'node:child_process';
import { BrnetError, environment } from '../errors.ts';
import { write } from '../tty.ts';
import { isRootless, permissionHint } from './rootless.ts';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Return the result instead of throwing when the command exits non-zero. */
  allowFail?: boolean;
}

export interface RunResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
}

const packageOf: Record<string, string> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  ss: 'iproute2',
  iptables: 'iptables',
  ip6tables: 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
  'iptables-save': 'iptables',
  'ip6tables-save': 'iptables',
  conntrack: 'conntrack',
  nsenter: 'util-linux',
  sysctl: 'procps',
  busctl: 'systemd',
  unshare: 'util-linux',
  umount: 'mount',
  rootlesskit: 'rootlesskit',
  slirp4netns: 'slirp4netns',
  newuidmap: 'uidmap',
};

// --debug sets BRNET_DEBUG (see cli.ts), so that turning it on needs no import of this module.
const debugOn = () => process.env.BRNET_DEBUG === '1';

/** A printable form of argv, for --dry-run plans and error messages. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run: empty argv');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      timeout: opts.timeoutMs ?? 20_000,
      killSignal: 'SIGKILL',
      // A process group of its own: a Ctrl-C on the terminal reaches brnet alone, which lets
      // the step finish and then rolls back (plan/signals.ts), instead of killing it half-way.
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // the tool may exit before reading all its input
    child.stdin.end(opts.input ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      trace(argv, -1, started);
      if (e.code === 'ENOENT') {
        const pkg = packageOf[cmd] ?? cmd;
        reject(environment(`\`${cmd}\` not found`, `install it: apt-get install ${pkg}`));
      } else reject(environment(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      const result: RunResult = {
        argv,
        code: code ?? 128,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      trace(argv, result.code, started, opts.input);
      if (signal === 'SIGKILL' && code === null) {
        return reject(new BrnetError('COMMAND_FAILED', `${shellQuote(argv)}: timed out`));
      }
      if (result.code !== 0 && !opts.allowFail) return reject(commandError(result, opts.input));
      resolve(result);
    });
  });
}

function trace(argv: string[], code: number, started: number, input?: string): void {
  if (!debugOn()) return;
  const ms = (performance.now() - started).toFixed(1);
  const lines = input ? ` <<${input.split('\n').length - 1} lines` : '';
  write(2, `+ ${shellQuote(argv)}${lines}  [exit ${code}, ${ms} ms]\n`);
}

/** Turns a failed result into the error the user sees, naming the failing batch line if any. */
export function commandError(r: RunResult, input?: string): BrnetError {
  let why = r.stderr.trim().split('\n').filter(Boolean).slice(0, 2).join('; ') || `exit status ${r.code}`;
  if (/Operation not permitted|Permission denied|must be root/i.test(r.stderr) && isRootless()) {
    return environment(`${shellQuote(r.argv)}: ${why}`, permissionHint());
  }
  // `ip -batch -` reports "Command failed -:N"; iptables-restore "line N failed".
  const m = /Command failed -:(\d+)|line (\d+) failed/.exec(r.stderr);
  const lineNo = m ? Number(m[1] ?? m[2]) : 0;
  const line = lineNo && input ? input.split('\n')[lineNo - 1] : undefined;
  if (line) why += ` (at: ${line.trim()})`;
  return new BrnetError('COMMAND_FAILED', `${shellQuote(r.argv)}: ${why}`);
}

/** A command that runs until stopped (`nft monitor`), its stdout handed over line by line. */
export interface Follower {
  stop(): void;
  /** Resolves with the exit code when the command ends, by itself or stopped. */
  exited: Promise<number>;
}

export function follow(argv: string[], onLine: (line: string) => void): Follower {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('follow: empty argv');
  trace(argv, 0, performance.now());
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' }, detached: true });
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    // A line longer than any event brnet looks at is somebody's payload: dropped, not kept whole.
    if (rest.length > 65_536) rest = '';
    for (const l of lines) onLine(l);
  });
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('close', (code) => resolve(code ?? 128));
  });
  return {
    stop() {
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {}
      }
    },
    exited,
  };
}
