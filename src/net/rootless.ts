// Rootless mode: brnet run by a user who is not root on the host, inside a user and network
// namespace where it holds CAP_NET_ADMIN (rootlesskit, `unshare -rn`, `brnet rootless`).
// Everything here is read from /proc without a process: it is asked on every call (the default
// state dir depends on it).
import { accessSync, constants, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { environment } from '../errors.ts';
import { isSafePath } from '../validate/values.ts';

/** The identity map of the initial user namespace: every uid is itself. */
const FULL_MAP = /^\s*0\s+0\s+4294967295\s*$/;

const CAP_NET_ADMIN = 12n;

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** Is this `uid_map` the initial user namespace's? */
export const isInitialUidMap = (map: string): boolean => FULL_MAP.test(map);

/** Is this process in the host's own user namespace? (A kernel without user namespaces: yes.) */
export function inInitialUserns(): boolean {
  return isInitialUidMap(readOr('/proc/self/uid_map', '0 0 4294967295'));
}

const euid = () => process.geteuid?.() ?? 0;

/** Not root on the host: a non-root uid, or uid 0 of a user namespace other than the initial one. */
export function isRootless(): boolean {
  return euid() !== 0 || !inInitialUserns();
}

/** The host's uid for our uid 0 (the user who started the user namespace), or our own uid. */
function hostUid(): number {
  const line = readOr('/proc/self/uid_map', '').split('\n').find((l) => /^\s*0\s/.test(l));
  const outside = line?.trim().split(/\s+/)[1];
  return outside && /^\d+$/.test(outside) && !inInitialUserns() ? Number(outside) : euid();
}

/**
 * `$XDG_RUNTIME_DIR`, where a rootless brnet keeps its state and its namespaces. Without it,
 * /run/user/UID of the host user, when that exists (what systemd-logind makes).
 */
export function runtimeDir(): string {
  const env = process.env.XDG_RUNTIME_DIR;
  if (env) {
    if (!env.startsWith('/') || !isSafePath(env)) {
      throw environment(`XDG_RUNTIME_DIR=${env} is not an absolute path without whitespace, quotes, '#' or '\\'`, 'set XDG_RUNTIME_DIR to /run/user/UID, or give --state-dir');
    }
    return env.replace(/\/+$/, '') || '/';
  }
  const guess = `/run/user/${hostUid()}`;
  if (existsDir(guess)) return guess;
  throw environment('rootless: XDG_RUNTIME_DIR is not set and there is no ' + guess, 'set XDG_RUNTIME_DIR (usually /run/user/UID), or give --state-dir');
}

/**
 * The state dir when neither --state-dir nor BRNET_STATE_DIR says: /var/lib/brnet, or rootless
 * `$XDG_RUNTIME_DIR/brnet`. Root of a user namespace with no runtime dir at all (an
 * unprivileged container, where nobody logged in) keeps /var/lib/brnet, as root there expects.
 */
export function defaultStateDir(): string {
  if (!isRootless()) return '/var/lib/brnet';
  if (euid() === 0 && !process.env.XDG_RUNTIME_DIR && !existsDir(`/run/user/${hostUid()}`)) return '/var/lib/brnet';
  return join(runtimeDir(), 'brnet');
}

function existsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

let netnsDirCache: string | undefined;

/**
 * Where named namespaces live: /run/netns (where `ip netns` keeps them), or, rootless when
 * /run/netns cannot be written (it belongs to the host's root), `$XDG_RUNTIME_DIR/brnet/netns`.
 */
export function netnsDir(): string {
  if (netnsDirCache) return netnsDirCache;
  let dir = '/run/netns';
  if (isRootless()) {
    let usable: boolean;
    try {
      usable = statSync(dir).isDirectory() && writable(dir);
    } catch {
      usable = writable('/run'); // `ip netns add` makes it
    }
    if (!usable) dir = join(runtimeDir(), 'brnet', 'netns');
  }
  netnsDirCache = dir;
  return dir;
}

/** Where the named namespace NAME is (or would be made). */
export const namedNetnsPath = (name: string) => `${netnsDir()}/${name}`;

/** CapEff of this process. */
function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readOr('/proc/self/status', ''));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

const nsLink = (kind: 'net' | 'user') => {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`);
  } catch {
    return `${kind}:[?]`;
  }
};

/**
 * Does our user namespace own the network namespace? Its sysctls belong to the root of the
 * user namespace that owns it; seen from a user namespace where that root is not mapped (one
 * made with `unshare -r` but no `-n`), they belong to the overflow uid instead of 0.
 */
function ownsNetns(): boolean {
  for (const f of ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/core/somaxconn']) {
    try {
      return statSync(f).uid === 0;
    } catch {}
  }
  return true; // nothing to tell by: the commands themselves will say
}

export interface CapProblem {
  message: string;
  hint: string;
}

const ROOTLESS_HINT = 'run it as root (sudo), or without root in a user and network namespace of your own: `brnet rootless`; --dry-run shows the plan without root (it needs read access to the state dir)';

/** Why this process cannot change its network namespace, or null when it holds CAP_NET_ADMIN over it. */
export function netAdminProblem(): CapProblem | null {
  const net = nsLink('net');
  const initial = inInitialUserns();
  if (!(effectiveCaps() & (1n << CAP_NET_ADMIN))) {
    const who = initial ? `uid ${euid()}` : `uid ${euid()} of user namespace ${nsLink('user')}`;
    return { message: `it needs CAP_NET_ADMIN over network namespace ${net}, which ${who} does not have`, hint: ROOTLESS_HINT };
  }
  if (!initial && !ownsNetns()) {
    return {
      message: `CAP_NET_ADMIN of user namespace ${nsLink('user')} does not extend to network namespace ${net}, which belongs to another user namespace`,
      hint: 'give the user namespace a network namespace of its own: `brnet rootless`, or unshare -rn (with -m for named namespaces)',
    };
  }
  return null;
}

/** The hint for "Operation not permitted" from a command or a write to /proc. */
export function permissionHint(): string {
  const p = netAdminProblem();
  if (p) return p.hint;
  if (isRootless()) {
    return `rootless (user namespace ${nsLink('user')}): only its own network namespace is this user's to change; host-wide settings and kernel modules need root on the host`;
  }
  return 'run brnet as root';
}

let warner: ((msg: string) => void) | null = null;
const warned = new Set<string>();

/** Where warnings of rootless mode go (the command's ctx.warn). */
export function setRootlessWarn(fn: (msg: string) => void): void {
  warner = fn;
}

/** One warning per message and process. */
export function warnOnce(msg: string): void {
  if (warned.has(msg)) return;
  warned.add(msg);
  warner?.(msg);
}
