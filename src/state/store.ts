// State access. Every mutating command runs lock → read → validate → plan → apply → write →
// unlock; read-only commands read without the lock, which is safe because the file is only
// ever replaced by an atomic rename. lowdb provides the Low container; its own JSONFile
// adapter is not used because it neither locks, nor fsyncs, and goes memory-only when
// NODE_ENV=test (see AtomicStateFile below).
import { closeSync, constants, fstatSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { environment } from '../errors.ts';
import { isRootless } from '../net/rootless.ts';
import { ShapeError } from '../validate/shape.ts';
import { interruptedError, signalled } from '../signals.ts';
import { migrate } from './migrate.ts';
import { type State, StateSchema, emptyState } from './schema.ts';

/**
 * lowdb adapter: validates every read in full, whoever wrote the file (it is input like any
 * other: edited by hand, copied back, planted); writes atomically (unique temp, fsync, rename,
 * 0600).
 */
class AtomicStateFile {
  /**
   * The inode of the file this call read (null: there was none). Every write replaces the
   * file by a rename, so a different inode at write time means another call committed since:
   * this call's state is built on what it read, and writing it would lose that commit.
   */
  private readIno: number | null = null;

  constructor(readonly file: string) {}

  async read(): Promise<State | null> {
    let text: string;
    try {
      const fd = openSync(this.file, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        this.readIno = fstatSync(fd).ino;
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') return null;
      if (err.code === 'EACCES' || err.code === 'EPERM') throw accessDenied(dirname(this.file), 'read');
      throw environment(`cannot read state file ${this.file}: ${err.message}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw environment(
        `state file ${this.file} is not valid JSON: ${(e as Error).message}`,
        `fix or move it away; the previous version is kept as ${this.file}.bak`,
      );
    }
    try {
      return StateSchema(migrate(raw, this.file));
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      throw environment(
        `state file ${this.file} is invalid: ${e.message}`,
        `fix or move it away; the previous version is kept as ${this.file}.bak`,
      );
    }
  }

  async write(data: State): Promise<void> {
    if (lockLost) throw lostLock(`the lock on ${dirname(this.file)} was lost while this call was stopped`);
    if (currentIno(this.file) !== this.readIno) throw lostLock(`${this.file} was replaced by another call since this one read it`);
    // Keep the version being replaced as state.json.bak: a hard link costs no copy, and the
    // rename below leaves the old inode reachable through it.
    const bak = `${this.file}.bak`;
    try {
      unlinkSync(bak);
    } catch {}
    try {
      linkSync(this.file, bak);
    } catch {}
    try {
      writeAtomic(this.file, serialize(data));
    } catch (e) {
      throw environment(`cannot write state file ${this.file}: ${(e as Error).message}`);
    }
    this.readIno = currentIno(this.file);
    // Earlier versions recorded the file's identity here to skip validation; nothing reads it now.
    try {
      unlinkSync(`${this.file}.ok`);
    } catch {}
  }
}

function currentIno(file: string): number | null {
  try {
    return lstatSync(file).ino;
  } catch {
    return null;
  }
}

const lostLock = (why: string) =>
  environment(`${why}: nothing of this call was kept, so that no other call's change is lost`, 'run it again');

/** Set when proper-lockfile finds this call's lock taken over or not refreshed in time. */
let lockLost = false;

/**
 * Replaces `file` with `text` so that a reader, or a crash at any moment, sees the old file or
 * the new one, whole: a new file beside it (created, never opened through a link), written,
 * flushed to disk, renamed over the old one, and the directory flushed so the rename lasts.
 * A rename replaces a symlink planted as `file` instead of writing where it points.
 * Written here rather than with write-file-atomic, for a measured reason: in the compiled
 * executable it took 15 ms for a loaded host's state (its asynchronous calls, and loading it,
 * another 6), where these few synchronous calls take 2-3. A crash between creating and renaming
 * leaves a `state.json.tmp-*` file, which nothing reads.
 */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const buf = Buffer.from(text);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dir = openSync(dirname(file), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * The file's text: the settings on the first line, then one network per line. JSON.stringify's
 * compact form runs on JSC's fast path (over twenty times faster than the indented form for a
 * loaded host's state, and about 40% fewer bytes to write, read back and parse); a line per network keeps the
 * file readable with `jq` or an editor and its changes one line each.
 */
export function serialize(state: State): string {
  const { networks, ...settings } = state;
  const head = JSON.stringify(settings).slice(0, -1);
  const lines = networks.map((n) => JSON.stringify(n));
  return `${head},"networks":[${lines.length ? `\n${lines.join(',\n')}\n` : ''}]}\n`;
}

export type Db = Low<State>;

/**
 * The state decides what root runs, so no one but the user running brnet may control it: the
 * directory and every file brnet keeps there must be that user's, writable by no one else, and
 * none of them a symlink (lstat: a link is refused, never followed). Otherwise exit 5 naming
 * the path and the fix, before anything is read. A directory that does not exist yet holds
 * nothing to trust; brnet creates it 0700.
 */
export function trustStateDir(dir: string): void {
  const uid = process.geteuid?.() ?? 0;
  const check = (path: string, kind: 'dir' | 'file' | 'any') => {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'EACCES' || code === 'EPERM') throw accessDenied(dir, 'read');
      throw environment(`cannot check ${path}: ${(e as Error).message}`);
    }
    const fix = kind === 'dir' ? `chown ${uid} ${path} && chmod 0700 ${path}` : `chown ${uid} ${path} && chmod go-w ${path}`;
    if (st.isSymbolicLink()) throw environment(`${path} is a symlink: brnet does not follow links in its state directory`, `replace it with the real ${kind === 'dir' ? 'directory' : 'file'}`);
    if (kind === 'dir' && !st.isDirectory()) throw environment(`${path} is not a directory`, 'give a directory with --state-dir');
    if (kind === 'file' && !st.isFile()) throw environment(`${path} is not a regular file`, `move it away`);
    // Root's files are trusted by anyone: a user who is not root only reads them.
    if (st.uid !== uid && st.uid !== 0) throw environment(`${path} belongs to uid ${st.uid}, not to the user running brnet (uid ${uid})`, fix);
    if (st.mode & 0o022) throw environment(`${path} is writable by ${st.mode & 0o002 ? 'anyone' : 'its group'}`, fix);
  };
  check(dir, 'dir');
  for (const f of ['state.json', 'state.json.bak', 'netns.pending', 'firewall.migrating']) check(join(dir, f), 'file');
  check(join(dir, 'state.lock'), 'any');
}

/**
 * The usual cause is a user who is not root, on root's state dir: what needs root, and what
 * needs only read access, in one line each.
 */
function accessDenied(dir: string, what: 'read' | 'write' | 'create'): Error {
  const uid = process.geteuid?.() ?? 0;
  return environment(
    `permission denied: cannot ${what} the state dir ${dir} as uid ${uid}`,
    'commands that change the network need root (sudo brnet ...); --dry-run and read-only commands (ls, inspect, config show) need only read access to the state dir',
  );
}

export async function readState(dir: string): Promise<Db> {
  trustStateDir(dir);
  const db = new Low<State>(new AtomicStateFile(join(dir, 'state.json')), emptyState());
  await db.read();
  return db;
}

const lockWaitMs = () => Number(process.env.BRNET_LOCK_TIMEOUT_MS) || 30_000;

/**
 * Runs fn while holding the state directory's lock. proper-lockfile uses an atomic mkdir and
 * refreshes its mtime while held, so a lock left by a killed process goes stale after two
 * seconds instead of blocking forever.
 */
export async function withLock<T>(dir: string, onWait: () => void, fn: () => Promise<T>): Promise<T> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw accessDenied(dir, 'create');
    throw environment(`cannot create state directory ${dir}: ${(e as Error).message}`, isRootless() ? 'give a directory of your own with --state-dir' : 'run brnet as root');
  }
  trustStateDir(dir); // before the lock is made in it
  const lockPath = join(dir, 'state.lock');
  const deadline = Date.now() + lockWaitMs();
  let release: (() => Promise<void>) | undefined;
  let waited = false;
  const { default: lockfile } = await import('proper-lockfile');
  while (!release) {
    try {
      release = await lockfile.lock(dir, {
        lockfilePath: lockPath,
        realpath: false,
        // A lock whose mtime is not refreshed for 5 s belongs to a process that died (kill -9,
        // power loss) or was stopped that long (SIGSTOP, a frozen VM): the holder refreshes it
        // every second while working. A holder that finds out it was stopped past that bound
        // refuses to write (see write above), as another call may have taken the lock.
        stale: 5_000,
        update: 1_000,
        onCompromised: () => {
          lockLost = true;
        },
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EACCES' || err.code === 'EPERM') throw accessDenied(dir, 'write');
      if (err.code !== 'ELOCKED') throw environment(`cannot lock ${lockPath}: ${err.message}`);
      if (signalled()) throw interruptedError(false); // nothing is held or changed yet
      if (Date.now() > deadline) {
        throw environment(`another brnet process holds ${lockPath}`, 'retry when it has finished');
      }
      if (!waited) {
        waited = true;
        onWait();
      }
      await new Promise((r) => setTimeout(r, 15 + Math.random() * 35));
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
