// SIGINT, SIGTERM and SIGHUP while a change is applied: brnet does not die half-way. The
// signal is noted; before each step the runner asks, and a change not yet past its point of no
// return (see Step.irreversible) stops there and is rolled back; one past it finishes and is
// written. Either way the lock is released and the call exits 128 + the signal's number (130,
// 143, 129), as a shell reports a command killed by it. The commands brnet runs are in
// process groups of their own (net/exec.ts), so a Ctrl-C on the terminal reaches brnet, not a
// half-done `ip -batch`.
import { BrnetError } from './errors.ts';

const NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type Caught = keyof typeof NUMBERS;

let caught: Caught | null = null;

/** Notes the signals until the returned function is called; `tell` says once what happens. */
export function holdSignals(tell: (msg: string) => void): () => void {
  const handlers = (Object.keys(NUMBERS) as Caught[]).map((sig) => {
    const h = () => {
      if (caught === null) tell(`${sig} received: stopping at the next safe point…`);
      caught ??= sig;
    };
    process.on(sig, h);
    return () => process.off(sig, h);
  });
  return () => {
    for (const off of handlers) off();
  };
}

export const signalled = (): boolean => caught !== null;

export function interruptedError(doneAnyway: boolean): BrnetError {
  const sig = caught ?? 'SIGINT';
  const what = doneAnyway ? 'the change was past its point of no return and was finished first' : 'nothing was changed (what had been done was rolled back)';
  return new BrnetError('INTERRUPTED', `interrupted by ${sig}: ${what}`, { exitCode: 128 + NUMBERS[sig] });
}

/** Throws when a signal has come: called before each step while the change can still be undone. */
export function stopIfSignalled(): void {
  if (caught !== null) throw interruptedError(false);
}
