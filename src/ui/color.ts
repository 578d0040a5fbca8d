// Colour is decided once: chalk ignores NO_COLOR, so everything coloured goes through this one
// Chalk instance, whose level is decided here. chalk is imported only when
// something is about to be printed for a person, to keep start-up light.
import type { ChalkInstance } from 'chalk';
import { type Fd, isTerminal } from '../tty.ts';

let instance: ChalkInstance | null = null;
let disabled = false;

export function disableColor(): void {
  disabled = true;
  instance = null;
}

/** The colour depth of stdout: none unless it is a terminal; then as TERM and COLORTERM say. */
export function colorLevel(fd: Fd = 1): 0 | 1 | 2 | 3 {
  const env = process.env;
  if (disabled || env.NO_COLOR || env.TERM === 'dumb' || env.FORCE_COLOR === '0' || !isTerminal(fd)) return 0;
  if (env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit') return 3;
  return /256/.test(env.TERM ?? '') ? 2 : 1;
}

export async function color(): Promise<ChalkInstance> {
  if (!instance) {
    const { Chalk } = await import('chalk');
    instance = new Chalk({ level: colorLevel() });
  }
  return instance;
}
