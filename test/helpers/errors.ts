// Pure tests assert on the error a call throws: its exit code and message.
import { BrnetError } from '../../src/errors.ts';

/** The BrnetError fn throws; any other outcome fails the test. */
export function thrown(fn: () => unknown): BrnetError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BrnetError) return e;
    throw e;
  }
  throw new Error('expected a BrnetError, nothing was thrown');
}
