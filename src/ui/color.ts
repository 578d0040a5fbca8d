// Colour is decided once: chalk ignores NO_COLOR, so everything coloured goes through this one
// Chalk instance, whose level is decided here. chalk is imported only when
// something is about to be printed for a person, to keep start-up light.
import type { ChalkInstance } from 'chalk';

let instance: ChalkInstance | null = null;
let disabled = false;

export function disableColor(): void {
  disabled = true;
  instance = null;
}

export function colorLevel(stream: NodeJS.WriteStream = process.stdout): 0 | 1 | 2 | 3 {
  if (disabled || process.env.NO_COLOR || !stream.isTTY || process.env.TERM === 'dumb') return 0;
  if (process.env.FORCE_COLOR === '0') return 0;
  const depth = stream.getColorDepth?.() ?? 4;
  return depth >= 24 ? 3 : depth >= 8 ? 2 : 1;
}

export async function color(): Promise<ChalkInstance> {
  if (!instance) {
    const { Chalk } = await import('chalk');
    instance = new Chalk({ level: colorLevel() });
  }
  return instance;
}
