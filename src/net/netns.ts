// Network namespaces as `--netns NS` names them: a name under /run/netns (rootless, maybe
// `$XDG_RUNTIME_DIR/brnet/netns`: see rootless.ts), a path, or pid:PID.
// Checking that one exists costs no process (stat/statfs); looking inside costs exactly one
// (`nsenter --net=PATH -- ip -j -batch -`, links and default routes together).
import { isIpText, isNetnsName, isPid, isSafePath } from '../validate/values.ts';
import { readFileSync, statSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { environment, invalid, notFound } from '../errors.ts';
import { run } from './exec.ts';
import { parseJsonArray } from './host.ts';
import { ipArgv } from './ipcmd.ts';
import { namedNetnsPath, netnsDir, permissionHint } from './rootless.ts';

export const NETNS_DIR = '/run/netns';

export interface NetnsRef {
  /** As the user gave it; stored and shown. */
  spec: string;
  /** What brnet opens: /run/netns/NAME, an absolute path, or /proc/PID/ns/net. */
  path: string;
  /** Set for a named namespace: only those can be created (`ip netns add`) and deleted. */
  name: string | null;
}

export function parseNetns(spec: string): NetnsRef {
  const pid = /^pid:(.*)$/.exec(spec);
  if (pid) {
    if (!isPid(pid[1] ?? '')) throw invalid(`invalid namespace "${spec}": pid:PID needs a process id`);
    return { spec, path: `/proc/${pid[1]}/ns/net`, name: null };
  }
  if (spec.includes('/')) {
    if (!isSafePath(spec)) throw invalid(`invalid namespace path "${spec}": no whitespace, quotes, '#' or '\\'`);
    // Stored absolute: a later `endpoint rm` may run from another directory.
    return { spec, path: resolve(spec), name: null };
  }
  if (!isNetnsName(spec)) {
    throw invalid(`invalid namespace name "${spec}": use letters, digits and _ . @ + : -, starting with a letter, digit or _`);
  }
  return { spec, path: namedNetnsPath(spec), name: spec };
}

export type NetnsStatus = 'ok' | 'missing' | 'not-netns' | 'host';

const NSFS_MAGIC = 0x6e736673;

export interface NetnsStat {
  status: NetnsStatus;
  /** dev and ino of the namespace file, when status is 'ok' or 'host'. */
  id: { dev: number; ino: number } | null;
}

let self: { dev: number; ino: number } | undefined;

/** Does `path` name a namespace file, which one, and is it not brnet's own network namespace? */
export function statNetns(path: string): NetnsStat {
  let st: ReturnType<typeof statSync>;
  let type: number;
  try {
    st = statSync(path);
    type = Number(statfsSync(path).type);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ESRCH') return { status: 'missing', id: null };
    throw environment(`cannot open namespace ${path}: ${err.message}`, permissionHint());
  }
  // An empty file under /run/netns (left by an interrupted `ip netns add`) is not a namespace.
  // In brnet's own directory (rootless) it is what a namespace leaves when the mount namespace
  // it was mounted in ends (unshare -rnm exited): gone, as after a reboot, and made again there.
  if (type !== NSFS_MAGIC) return { status: leftBehind(path, st) ? 'missing' : 'not-netns', id: null };
  self ??= statSync('/proc/self/ns/net');
  const id = { dev: st.dev, ino: st.ino };
  return { status: st.dev === self.dev && st.ino === self.ino ? 'host' : 'ok', id };
}

/** An empty file in brnet's own namespace directory (see statNetns). */
export function leftBehind(path: string, st: { isFile(): boolean; size: number | bigint }): boolean {
  const dir = netnsDir();
  return dir !== NETNS_DIR && dirname(path) === dir && st.isFile() && Number(st.size) === 0;
}

export const netnsStatus = (path: string): NetnsStatus => statNetns(path).status;

/** Fails with the right exit code unless `ref` is an existing namespace other than our own. */
export function requireNetns(ref: NetnsRef, status = netnsStatus(ref.path)): void {
  if (status === 'ok') return;
  if (status === 'missing') {
    throw notFound(
      `network namespace ${ref.spec} not found${ref.path === ref.spec ? '' : ` (${ref.path})`}`,
      ref.name ? (ref.path === `${NETNS_DIR}/${ref.name}` ? `create it with: ip netns add ${ref.name}, or add --create-netns` : 'add --create-netns') : 'check the path or the process id',
    );
  }
  if (status === 'host') throw invalid(`namespace ${ref.spec} is brnet's own network namespace, not a separate one`);
  throw invalid(`${ref.path} exists but is not a network namespace`, ref.name ? `remove the stale file: ${ref.path === `${NETNS_DIR}/${ref.name}` ? `ip netns del ${ref.name}` : `rm ${ref.path}`}` : undefined);
}

/**
 * When a process started (field 22 of /proc/PID/stat, clock ticks since boot): with its PID,
 * what tells it from a later process that got the same PID. null when there is no such process.
 */
export function processStart(pid: string): string | null {
  return processStat(pid)?.start ?? null;
}

/** A process's state letter (field 3: Z for a zombie) and start time; null when there is no such process. */
export function processStat(pid: string | number): { state: string; start: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = fields[19]; // field 22 is the 20th after the name
  return start && /^\d+$/.test(start) ? { state: fields[0] ?? '', start } : null;
}

export interface NsRoute {
  family: 4 | 6;
  gateway: string | null;
  dev: string | null;
}
export interface NetnsView {
  links: string[];
  /** Interface -> alias, for the interfaces that have one (brnet's marks among them). */
  aliases: Record<string, string>;
  /** Default routes of the main table. */
  defaultRoutes: NsRoute[];
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: string;
  table?: string;
  pref?: string;
  metric?: number;
}

/** Interfaces and default routes inside the namespace, with one process. */
export async function readNetns(path: string): Promise<NetnsView> {
  // `route show default` without -4/-6 lists both families (`ip -6` cannot be given per line).
  const r = await run(ipArgv(path, '-j', '-batch', '-'), { input: 'link show\nroute show default table all\n', allowFail: true });
  if (r.code !== 0) {
    if (/No such file|Invalid argument|reassociate/i.test(r.stderr)) {
      throw notFound(`network namespace ${path} cannot be entered: ${r.stderr.trim().split('\n')[0]}`);
    }
    throw environment(`cannot look into network namespace ${path}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`}`);
  }
  const [linksText = '[]', routesText = '[]'] = r.stdout.split('\n').filter((l) => l.startsWith('['));
  // Names are only compared with, never written into a command: any string is fine here.
  const parsed = parseJsonArray(linksText, 'ip -j link') as { ifname?: unknown; ifalias?: unknown }[];
  const links: string[] = [];
  const aliases: Record<string, string> = {};
  for (const l of parsed) {
    if (typeof l?.ifname !== 'string') continue;
    links.push(l.ifname);
    if (typeof l.ifalias === 'string') aliases[l.ifname] = l.ifalias;
  }
  const defaultRoutes = parseDefaultRoutes(parseJsonArray(routesText, 'ip -j route') as RouteJson[]);
  return { links, aliases, defaultRoutes };
}

export function parseDefaultRoutes(routes: RouteJson[]): NsRoute[] {
  const out: NsRoute[] = [];
  for (const rt of routes) {
    if (rt?.dst !== 'default') continue;
    if (rt.gateway !== undefined && (typeof rt.gateway !== 'string' || !isIpText(rt.gateway))) continue;
    if (rt.dev !== undefined && typeof rt.dev !== 'string') continue;
    if (rt.table && rt.table !== 'main') continue; // policy-routing tables are the user's business
    if (rt.type && rt.type !== 'unicast') continue; // "unreachable default" and friends route nothing
    // `ip -j` does not print the family; only IPv6 routes carry `pref`, and a gateway tells too.
    const v6 = rt.gateway ? rt.gateway.includes(':') : rt.pref !== undefined;
    out.push({ family: v6 ? 6 : 4, gateway: rt.gateway ?? null, dev: rt.dev ?? null });
  }
  return out;
}
