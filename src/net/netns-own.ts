// Named namespaces outside /run/netns (rootless: `$XDG_RUNTIME_DIR/brnet/netns`, see
// rootless.ts). `ip netns` knows only /run/netns, so brnet makes these itself, the way `ip
// netns add` does: an empty file with the new namespace bind-mounted on it (`unshare
// --net=FILE`, which needs a mount namespace where the user holds CAP_SYS_ADMIN: `unshare
// -rnm`, rootlesskit), and deletes them with a lazy unmount and an unlink, as `ip netns del`.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { environment } from '../errors.ts';
import type { Step } from '../plan/steps.ts';
import { run } from './exec.ts';

/** Is this namespace path one that `ip netns add/del NAME` handles? */
export const inRunNetns = (path: string) => dirname(path) === '/run/netns';

export const createArgv = (path: string) => ['unshare', `--net=${path}`, 'true'];
export const deleteArgv = (path: string) => ['umount', '-l', path];

export async function createOwnNetns(path: string): Promise<void> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // What an ended mount namespace left (netns.ts leftBehind) is used again.
    if (!existsSync(path) || statSync(path).size !== 0) writeFileSync(path, '', { flag: 'wx', mode: 0o444 });
  } catch (e) {
    throw environment(`cannot create namespace file ${path}: ${(e as Error).message}`);
  }
  const r = await run(createArgv(path), { allowFail: true });
  if (r.code === 0) return;
  rmSync(path, { force: true });
  const why = r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`;
  throw environment(
    `cannot create namespace ${path}: ${why}`,
    /not permitted|denied/i.test(r.stderr)
      ? 'a named namespace outside /run/netns is a bind mount: run brnet in a mount namespace of its own too (unshare -rnm, or `brnet rootless`)'
      : undefined,
  );
}

/** Tolerant: a namespace already gone is fine. */
export async function deleteOwnNetns(path: string): Promise<void> {
  await run(deleteArgv(path), { allowFail: true });
  rmSync(path, { force: true });
}

/** Deletes the namespaces at `paths` (outside /run/netns); for `--dry-run`, the commands. */
export function deleteOwnNetnsStep(paths: readonly string[]): Step {
  return {
    show: paths.flatMap((p) => [deleteArgv(p).join(' '), `rm ${p}`]),
    async do() {
      for (const p of paths) await deleteOwnNetns(p);
    },
  };
}
