// The two descriptors brnet writes to. Everything brnet prints goes through write() below, a
// plain write(2) on the descriptor, and whether a descriptor is a terminal is read from /proc:
// in the compiled executable, touching process.stdout or process.stderr, or loading node:tty,
// builds Node's stream objects first, which costs about as much as the rest of a short call
// (measured with a program that prints one line either way).
import { readlinkSync, writeSync } from 'node:fs';
import { environment } from './errors.ts';

export type Fd = 1 | 2;

/** While a progress line is on the terminal, every write goes around it (ui/progress.ts). */
let around: ((writeIt: () => void) => void) | null = null;

export function writeAround(fn: typeof around): void {
  around = fn;
}

/** Writes all of text to fd: blocking, and quiet once the reader has gone (`brnet … | head`). */
export function write(fd: Fd, text: string): void {
  if (around) return around(() => writeAll(fd, text));
  writeAll(fd, text);
}

function writeAll(fd: Fd, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // a full non-blocking descriptor: wait 1 ms
      else if (code === 'EPIPE') return;
      else if (fd === 1 && (code === 'ENOSPC' || code === 'EIO' || code === 'EDQUOT')) {
        throw environment(`cannot write the output: ${(e as Error).message}`, 'free some space where the output goes, or send it elsewhere');
      } else throw e;
    }
  }
}

/** A terminal is a pty or a tty device: what isatty(3) says, without loading node:tty. */
export function isTerminal(fd: Fd | 0): boolean {
  try {
    const dev = readlinkSync(`/proc/self/fd/${fd}`);
    return dev.startsWith('/dev/pts/') || dev.startsWith('/dev/tty') || dev === '/dev/console';
  } catch {
    return false;
  }
}

