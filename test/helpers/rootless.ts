/**
 * A throwaway unprivileged user inside a Sandbox, which plays the real host: /etc/passwd,
 * /etc/group, /etc/subuid and /etc/subgid with the user added and its /run/user/UID, all in
 * the sandbox's own mount namespace (the machine's files are never written), and commands run
 * through `setpriv --reuid --regid --clear-groups` with a clean environment.
 */
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { BackgroundProcess, ExecResult, Sandbox } from './sandbox.ts';
import { BRNET_BIN } from './sandbox.ts';

export interface RootlessUser {
  uid: number;
  name: string;
  /** $XDG_RUNTIME_DIR of the user. */
  runtimeDir: string;
  /** argv prefix: run as the user, with the user's clean environment. */
  asUser(env?: Record<string, string>): string[];
  /** Runs argv as the user in the sandbox. */
  exec(argv: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; input?: string }): Promise<ExecResult>;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export async function addUser(sb: Sandbox, opts: { subids?: boolean; tun?: boolean } = {}): Promise<RootlessUser> {
  const uid = 61000 + Math.floor(Math.random() * 3000);
  const name = `brnet${uid}`;
  const runtimeDir = `/run/user/${uid}`;
  const subids = opts.subids !== false;
  // Overlays on /etc and /run, their upper layers on a tmpfs of the sandbox: what the test
  // writes there (the user, its runtime dir) stays in the sandbox's mount namespace, also
  // files the machine does not have (/etc/subuid, /run/user). The directory they sit on is
  // in the sandbox's state dir, which destroy() removes.
  const scratch = join(sb.stateDir, 'rootless');
  mkdirSync(scratch);
  const overlay = (dir: string) =>
    `mkdir -p ${scratch}${dir}/upper ${scratch}${dir}/work && mount -t overlay overlay -o lowerdir=${dir},upperdir=${scratch}${dir}/upper,workdir=${scratch}${dir}/work ${dir}`;
  const setup = [
    'set -e',
    `mount -t tmpfs -o mode=0755 tmpfs ${scratch}`,
    overlay('/etc'),
    overlay('/run'),
    // The overlay hides the sandbox's /run/netns tmpfs: a fresh one, root's, as on a real host.
    'mkdir -p /run/netns && mount -t tmpfs -o mode=0755 tmpfs /run/netns',
    `echo '${name}:x:${uid}:${uid}::${runtimeDir}:/bin/sh' >> /etc/passwd`,
    `echo '${name}:x:${uid}:' >> /etc/group`,
    subids ? `echo '${name}:200000:65536' >> /etc/subuid && echo '${name}:200000:65536' >> /etc/subgid` : 'true',
    `mkdir -p /run/user && mkdir -m 0700 ${runtimeDir} && chown ${uid}:${uid} ${runtimeDir}`,
    // slirp4netns needs /dev/net/tun, which is 0600 on this kind of machine: one of the sandbox's own.
    opts.tun ? 'mount -t tmpfs -o mode=0755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200' : 'true',
  ].join('\n');
  const r = await sb.sh(setup);
  if (r.code !== 0) throw new Error(`addUser: ${r.stderr}`);
  const asUser = (env: Record<string, string> = {}) => {
    const vars = { PATH, HOME: runtimeDir, USER: name, XDG_RUNTIME_DIR: runtimeDir, NO_COLOR: '1', SHELL: '/bin/sh', ...env };
    return ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'env', '-i', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
  };
  return {
    uid,
    name,
    runtimeDir,
    asUser,
    exec: (argv, o = {}) => sb.exec([...asUser(o.env), ...argv], { timeoutMs: o.timeoutMs, input: o.input }),
  };
}

/**
 * The user's own user, network and mount namespaces (`unshare -rnm`, as the user), with a
 * sysfs of that network namespace, held by a sleeping process; `exec` runs as the user in them
 * (`nsenter -U --preserve-credentials`, which an unprivileged user may do into namespaces of its
 * own: its uid is root there).
 */
export interface UserNamespaces {
  holder: BackgroundProcess;
  exec(argv: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; input?: string }): Promise<ExecResult>;
  brnet(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; input?: string }): Promise<ExecResult>;
  sh(cmd: string, opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<ExecResult>;
}

export async function unshareAsUser(sb: Sandbox, user: RootlessUser, prepare = ''): Promise<UserNamespaces> {
  const script = `mount -t sysfs sysfs /sys && ip link set lo up ${prepare ? `&& ${prepare}` : ''} && echo ready && exec sleep infinity`;
  const holder = sb.spawnBackground([...user.asUser(), 'unshare', '-rnm', '--', 'sh', '-c', script]);
  const deadline = Date.now() + 10_000;
  while (!holder.stdout().includes('ready')) {
    if (Date.now() > deadline || holder.child.exitCode !== null) throw new Error(`unshare -rnm as ${user.name} failed: ${holder.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // setpriv, unshare and sh all exec: the process spawned is the sleeping holder.
  const enter = ['nsenter', '-t', String(holder.pid), '-U', '-n', '-m', '--preserve-credentials', '--'];
  const exec: UserNamespaces['exec'] = (argv, o = {}) => user.exec([...enter, ...argv], o);
  return {
    holder,
    exec,
    brnet: (args, o = {}) => exec([BRNET_BIN, ...args], o),
    sh: (cmd, o = {}) => exec(['sh', '-c', cmd], o),
  };
}

/**
 * `brnet rootless` held open by the user (its CMD sleeps); `exec` runs as the user inside
 * rootlesskit's namespaces (its child_pid), with ROOTLESSKIT_STATE_DIR set as rootlesskit sets
 * it for its own children. `api` asks rootlesskit's port API from the test itself, through the
 * sandbox's mount namespace (/proc/PID/root).
 */
export interface RootlessSession extends UserNamespaces {
  childPid: number;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export async function startRootless(sb: Sandbox, user: RootlessUser): Promise<RootlessSession> {
  const holder = sb.spawnBackground([...user.asUser(), BRNET_BIN, 'rootless', '--', 'sh', '-c', 'echo ready && exec sleep infinity']);
  const deadline = Date.now() + 20_000;
  while (!holder.stdout().includes('ready')) {
    if (Date.now() > deadline || holder.child.exitCode !== null) throw new Error(`brnet rootless as ${user.name} failed: ${holder.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const stateDir = `${user.runtimeDir}/rootlesskit`;
  const childPid = Number((await sb.sh(`cat ${stateDir}/child_pid`)).stdout.trim());
  const enter = ['nsenter', '-t', String(childPid), '-U', '-n', '-m', '--preserve-credentials', '--'];
  const exec: UserNamespaces['exec'] = (argv, o = {}) => user.exec([...enter, ...argv], { ...o, env: { ROOTLESSKIT_STATE_DIR: stateDir, ...(o.env ?? {}) } });
  const socketPath = `/proc/${sb.pid}/root${stateDir}/api.sock`;
  return {
    holder,
    childPid,
    exec,
    brnet: (args, o = {}) => exec([BRNET_BIN, ...args], o),
    sh: (cmd, o = {}) => exec(['sh', '-c', cmd], o),
    api: (method, path, body) =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = request({ socketPath, method, path, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => {
            let parsed: any = text;
            try {
              parsed = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        });
        req.on('error', reject);
        req.end(payload);
      }),
  };
}
