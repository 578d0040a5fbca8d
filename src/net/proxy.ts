// The userland proxies as processes: starting one (and the handshake that ties it to the call
// until the state records it, see net/proxy-role.ts), telling whether a recorded one is alive,
// finding this instance's by their mark, and stopping one.
//
// A proxy is known by its pid, its start time (field 22 of /proc/PID/stat: a later process
// that gets the same pid has another) and its command line, which carries the mark of its
// endpoint (net/marks.ts) and its binding. Nothing is ever signalled without all three.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { BrnetError, conflict, environment } from '../errors.ts';
import { processStat } from './netns.ts';
import { hostPortText } from './ports.ts';
import { type ProxySpec, parseProxyArgs, proxyArgs } from './proxy-role.ts';

export type { ProxySpec } from './proxy-role.ts';

export interface ProxyIdentity {
  pid: number;
  start: string;
}

export const ROLE = '__proxy';
const READY_MS = 10_000;

export const describeProxy = (s: ProxySpec) => `${hostPortText(s.hostIp, s.hostPort)}/${s.proto} -> ${hostPortText(s.toIp, s.toPort)}`;

/**
 * How to run this executable again: Bun's compiled executable runs its embedded entry by
 * itself (its argv[1] is a /$bunfs/ path), Node needs the script.
 */
export function selfCommand(): string[] {
  const script = process.argv[1];
  return script && !script.startsWith('/$bunfs/') ? [process.execPath, script] : [process.execPath];
}

/** The role's argv, as /proc/PID/cmdline shows it from ROLE on. */
export const roleArgv = (mark: string, s: ProxySpec): string[] => [ROLE, ...proxyArgs(mark, s)];

/** The part of a process's command line from ROLE on, or null for any other process. */
function roleOf(pid: number): string[] | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
  const argv = raw.split('\0');
  if (argv[argv.length - 1] === '') argv.pop();
  const i = argv.indexOf(ROLE);
  return i < 0 ? null : argv.slice(i);
}

const living = (st: { state: string } | null) => st !== null && st.state !== 'Z' && st.state !== 'X';

/** Is the recorded proxy this very process, alive, serving `spec` for `mark`? */
export function proxyAlive(id: ProxyIdentity, mark: string, spec: ProxySpec): boolean {
  const st = processStat(id.pid);
  if (!living(st) || st?.start !== id.start) return false;
  const argv = roleOf(id.pid);
  return argv !== null && argv.join('\0') === roleArgv(mark, spec).join('\0');
}

export interface FoundProxy extends ProxyIdentity {
  mark: string;
  spec: ProxySpec;
}

/**
 * Every living proxy in this network namespace whose mark starts with `prefix` ("brnet@<id>:"):
 * one directory listing of /proc and a read per process (`check`, `restore`, migrations).
 */
export function findProxies(prefix: string): FoundProxy[] {
  let self: string;
  try {
    self = readlinkSync('/proc/self/ns/net');
  } catch {
    return [];
  }
  const out: FoundProxy[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const argv = roleOf(pid);
    if (!argv) continue;
    const parsed = parseProxyArgs(argv.slice(1));
    if (!parsed || !parsed.mark.startsWith(prefix)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) !== self) continue;
    } catch {
      continue;
    }
    const st = processStat(pid);
    if (living(st) && st) out.push({ pid, start: st.start, ...parsed });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the proxy if it is still the recorded process (never another that got its pid), and
 * returns once it is gone, so that its port is free: SIGTERM, then SIGKILL after 2 s.
 */
export async function stopProxy(id: ProxyIdentity): Promise<void> {
  const same = () => {
    const st = processStat(id.pid);
    return living(st) && st?.start === id.start;
  };
  if (!same() || !roleOf(id.pid)) return;
  for (const [sig, ms] of [['SIGTERM', 2_000], ['SIGKILL', 1_000]] as const) {
    try {
      process.kill(id.pid, sig);
    } catch {
      return;
    }
    for (let t = 0; t < ms && same(); t += 10) await sleep(10);
    if (!same()) return;
  }
  throw new BrnetError('COMMAND_FAILED', `userland proxy ${id.pid} did not exit`);
}

export interface StartedProxy {
  id: ProxyIdentity;
  /** The state records it now: the proxy goes on by itself. */
  commit(): Promise<void>;
  /** Rollback: it goes, and its port is free when this returns. */
  kill(): Promise<void>;
}

/**
 * Starts a proxy for `spec`, detached in a session of its own, and waits until it holds the
 * port. A port someone else holds is a conflict (4).
 */
export async function startProxy(mark: string, spec: ProxySpec): Promise<StartedProxy> {
  const [cmd, ...pre] = selfCommand() as [string, ...string[]];
  let child: ChildProcess;
  try {
    child = spawn(cmd, [...pre, ...roleArgv(mark, spec)], { detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
  } catch (e) {
    throw environment(`cannot start the userland proxy for ${describeProxy(spec)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const timer = setTimeout(() => resolve('error no answer within 10 s'), READY_MS);
    const done = (l: string) => {
      clearTimeout(timer);
      resolve(l);
    };
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) done(buf.slice(0, i));
    });
    child.once('error', (e) => done(`error ${e.message}`));
    child.once('exit', (code, sig) => done(buf.split('\n')[0] || `error exited (${sig ?? code})`));
  });
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(t);
  };
  const start = child.pid === undefined ? null : processStat(child.pid)?.start;
  if (line !== 'ready' || !start || child.pid === undefined) {
    await kill();
    const why = line.replace(/^error /, '');
    const where = `${hostPortText(spec.hostIp, spec.hostPort)}/${spec.proto}`;
    if (/EADDRINUSE/.test(why)) throw conflict(`cannot start the userland proxy on ${where}: the port is in use`, `see which program holds it: ss -lnp 'sport = :${spec.hostPort}'`);
    if (/EADDRNOTAVAIL/.test(why)) {
      throw environment(`cannot start the userland proxy on ${where}: ${spec.hostIp} is not an address of this host`, 'the proxy listens on the address, so it must exist first: add it to an interface, or publish on all addresses');
    }
    throw environment(`cannot start the userland proxy for ${describeProxy(spec)}: ${why}`);
  }
  const id = { pid: child.pid, start };
  return {
    id,
    async commit() {
      await new Promise<void>((resolve) => {
        child.stdin?.once('error', () => resolve());
        child.stdin?.end('commit\n', () => resolve());
      });
      child.stdout?.destroy();
      child.unref();
    },
    kill,
  };
}
