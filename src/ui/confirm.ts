// Asking before a removal the user may not have meant: only with a person on both ends.
import { isTerminal } from '../tty.ts';

/** stdin and stderr (where the question goes) are both terminals. */
export const canAsk = (): boolean => isTerminal(0) && isTerminal(2);

/** true when the user answers y or yes. */
export async function ask(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
