// `brnet batch`: one brnet command per line, run under one lock with one state write and one
// firewall commit, all or nothing. Provisioning 100 endpoints this way costs one Node
// start-up and one iptables-restore per family instead of a hundred of each.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BrnetError, invalid } from '../errors.ts';
import { readState, withLock } from '../state/store.ts';
import type { State } from '../state/schema.ts';
import { type Ctx, requireRoot } from './context.ts';
import { type BatchSession, firewallBetween, setBatchSession } from './operation.ts';
import { type Step, concurrently, planText, rollbackAfter, runSteps } from '../plan/steps.ts';

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

export function parseBatch(text: string): BatchLine[] {
  const out: BatchLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const argv = splitWords(line, i + 1);
    if (argv[0] === 'brnet') argv.shift();
    if (argv[0] && NOT_IN_BATCH.has(argv[0])) throw invalid(`line ${i + 1}: \`${argv[0]}\` cannot run inside a batch`);
    out.push({ lineNo: i + 1, argv });
  });
  return out;
}

function readSource(source: string | undefined): string {
  try {
    return readFileSync(!source || source === '-' ? 0 : source, 'utf8');
  } catch (e) {
    throw invalid(`cannot read batch file ${source}: ${(e as Error).message}`);
  }
}

function silence(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({ outputError: () => {}, writeOut: () => {}, writeErr: () => {} });
  for (const c of cmd.commands) silence(c);
}

export async function runBatch(ctx: Ctx, source: string | undefined): Promise<{ commands: number; plan: string | null }> {
  const lines = parseBatch(readSource(source));
  requireRoot(ctx);
  const { buildProgram } = await import('../cli.ts');
  const run = async (state: State): Promise<{ session: BatchSession; final: Step[] }> => {
    // No copy of the state: operations build new objects for what they change and leave the
    // rest shared (see mutate), so `state` stays as read, and identity tells at the end which
    // networks the batch changed.
    const session: BatchSession = { state, done: [], plans: [], after: [], atEnd: [] };
    setBatchSession(session);
    // One command tree for every line: commander restores each command's option values
    // before every parse after the first (building the tree costs ~0.4 ms a line).
    const program = buildProgram();
    silence(program);
    try {
      for (const { lineNo, argv } of lines) {
        const flags = ['--quiet', ...(ctx.dryRun ? ['--dry-run'] : []), '--state-dir', ctx.stateDir];
        try {
          await program.parseAsync(['node', 'brnet', ...argv, ...flags]);
        } catch (e) {
          const err = e as Error & { code?: string; exitCode?: number };
          const msg = (err.message ?? String(e)).replace(/^error: /, '');
          const wrapped =
            e instanceof BrnetError
              ? new BrnetError(e.code, `line ${lineNo}: ${e.message}`, e.hint ? { hint: e.hint } : {})
              : new BrnetError('USAGE', `line ${lineNo}: ${msg}`);
          throw ctx.dryRun ? wrapped : await rollbackAfter(wrapped, session.done);
        }
      }
      const fw = await firewallBetween(state, session.state);
      // The waits for namespaces to go run side by side: the kernel tears them all down together.
      const atEnd = session.atEnd.length ? [concurrently(session.atEnd)] : [];
      return { session, final: [...(fw ? [fw] : []), ...session.after, ...atEnd] };
    } finally {
      setBatchSession(null);
    }
  };
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const { session, final } = await run(db.data);
    return { commands: lines.length, plan: [...session.plans, planText(final)].filter(Boolean).join('\n') };
  }
  return withLock(
    ctx.stateDir,
    () => ctx.note('waiting for another brnet process to finish…'),
    async () => {
      const db = await readState(ctx.stateDir);
      const { session, final } = await run(db.data);
      const write: Step = {
        show: [],
        async do() {
          db.data = session.state;
          await db.write();
        },
      };
      try {
        await runSteps([...final, write], session.done);
      } catch (e) {
        throw await rollbackAfter(e, session.done);
      }
      return { commands: lines.length, plan: null };
    },
  );
}
