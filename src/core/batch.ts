// The batch file: one brnet command per line, without the leading `brnet`; blank lines and
// `#` comments are ignored. Lines are split into words as a shell would, but nothing is ever
// expanded or run: quotes and backslashes only. (core/runner.ts runs the operations.)
import { readFileSync } from 'node:fs';
import { invalid } from '../errors.ts';

export interface BatchLine {
  lineNo: number;
  argv: string[];
}

/** Splits a line into words like a shell would, without ever running one: quotes and backslashes only. */
export function splitWords(line: string, lineNo: number): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw invalid(`line ${lineNo}: unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

const NOT_IN_BATCH = new Set(['batch', 'restore', 'check', 'completion']);
/** What a line may start with; anything else is not echoed back (see parseBatch). */
const COMMANDS = new Set(['network', 'endpoint', 'port', 'config', 'version', 'help', ...NOT_IN_BATCH]);

export function parseBatch(text: string): BatchLine[] {
  const out: BatchLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const argv = splitWords(line, i + 1);
    if (argv[0] === 'brnet') argv.shift();
    // A file that is no batch at all (a secret passed by mistake: `brnet batch ~/.ssh/id_rsa`)
    // must not end up on a terminal or in a log: its words are not repeated.
    if (argv[0] !== undefined && !COMMANDS.has(argv[0])) {
      throw invalid(`line ${i + 1}: not a brnet command (each line of a batch is one, such as: network create NAME)`);
    }
    if (argv[0] && NOT_IN_BATCH.has(argv[0])) throw invalid(`line ${i + 1}: \`${argv[0]}\` cannot run inside a batch`);
    out.push({ lineNo: i + 1, argv });
  });
  return out;
}

export function readSource(source: string | undefined): string {
  try {
    return readFileSync(!source || source === '-' ? 0 : source, 'utf8');
  } catch (e) {
    throw invalid(`cannot read batch file ${source}: ${(e as Error).message}`);
  }
}
