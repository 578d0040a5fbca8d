// `brnet rootless [-- CMD...]`: rootlesskit (with slirp4netns for the uplink and its builtin
// port driver) gives CMD uid 0 in a user namespace with a network namespace of its own, where
// brnet then works without root. Inside, /run is rootlesskit's copy-up (a tmpfs whose entries
// are symlinks to the host's), so /run/netns is made a real directory first: `ip netns add`
// mounts namespaces there, and they live as long as rootlesskit does.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { conflict, environment } from '../errors.ts';
import { isRootless, runtimeDir } from '../net/rootless.ts';

/** The tools and the package each comes with (Debian/Ubuntu names). */
const TOOLS: [tool: string, pkg: string][] = [
  ['rootlesskit', 'rootlesskit'],
  ['slirp4netns', 'slirp4netns'],
  ['newuidmap', 'uidmap'],
  ['newgidmap', 'uidmap'],
];

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Has `file` (/etc/subuid or /etc/subgid) a range for the user, by name or by id? */
export function hasSubordinateIds(text: string, name: string, id: number): boolean {
  return text.split('\n').some((line) => {
    const [who, start, count] = line.trim().split(':');
    return (who === name || who === String(id)) && /^\d+$/.test(start ?? '') && /^[1-9]\d*$/.test(count ?? '');
  });
}

/** The child of a rootlesskit that still runs with this state dir (its child_pid, alive), or null. */
function runningChild(stateDir: string): number | null {
  try {
    const pid = readFileSync(join(stateDir, 'child_pid'), 'utf8').trim();
    if (/^[1-9]\d*$/.test(pid) && existsSync(`/proc/${pid}/ns/user`)) return Number(pid);
  } catch {}
  return null;
}

export interface RootlessArgs {
  /** rootlesskit's argv, CMD included. */
  argv: string[];
  stateDir: string;
}

/** Checks what rootlesskit needs (exit 5 naming the package or the line to add) and builds its argv. */
export function rootlesskitArgv(cmd: string[]): RootlessArgs {
  if (process.env.ROOTLESSKIT_STATE_DIR) {
    throw environment(`already inside rootlesskit (ROOTLESSKIT_STATE_DIR=${process.env.ROOTLESSKIT_STATE_DIR})`, 'run brnet directly here');
  }
  if (!isRootless()) throw environment('brnet rootless is for a user without root: root runs brnet directly', 'run it as the user who should own the networks');
  for (const [tool, pkg] of TOOLS) {
    if (!onPath(tool)) throw environment(`\`${tool}\` not found: brnet rootless needs it`, `install it: apt-get install ${pkg}`);
  }
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {}
  for (const [file, id] of [['/etc/subuid', uid], ['/etc/subgid', gid]] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {}
    if (!hasSubordinateIds(text, name, id)) {
      throw environment(
        `${file} has no range of subordinate ${file.endsWith('uid') ? 'uids' : 'gids'} for ${name}: rootlesskit maps them into its user namespace`,
        `add the line "${name}:100000:65536" to ${file} (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name})`,
      );
    }
  }
  const stateDir = join(runtimeDir(), 'rootlesskit');
  const running = runningChild(stateDir);
  if (running) {
    throw conflict(
      `another rootlesskit (pid ${running}) runs with ${stateDir}`,
      `enter its namespaces instead: nsenter -U --preserve-credentials -n -m -t ${running}`,
    );
  }
  // The copied-up /run/netns is a symlink to the host's (root's): a directory of its own instead.
  const prepare = 'if [ -L /run/netns ]; then rm -f /run/netns; fi; mkdir -p /run/netns && exec "$@"';
  const argv = [
    'rootlesskit',
    '--net=slirp4netns',
    '--port-driver=builtin',
    '--copy-up=/etc',
    '--copy-up=/run',
    '--disable-host-loopback',
    `--state-dir=${stateDir}`,
    '--',
    'sh',
    '-c',
    prepare,
    'brnet-rootless',
    ...(cmd.length ? cmd : [process.env.SHELL || '/bin/sh']),
  ];
  return { argv, stateDir };
}

/** Runs rootlesskit in the foreground; resolves with CMD's exit status (128+N for a signal). */
export function runRootless(cmd: string[]): Promise<number> {
  const { argv } = rootlesskitArgv(cmd);
  const [bin, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: 'inherit' });
    // The terminal's signals reach rootlesskit too (same process group); brnet waits for it.
    const ignore = () => {};
    for (const s of ['SIGINT', 'SIGQUIT', 'SIGTSTP'] as const) process.on(s, ignore);
    const fwd = (s: NodeJS.Signals) => () => child.kill(s);
    const onTerm = fwd('SIGTERM');
    const onHup = fwd('SIGHUP');
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    child.on('error', (e) => reject(environment(`cannot run rootlesskit: ${e.message}`)));
    child.on('close', (code, signal) => {
      resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}
