// A live progress line on stderr, for calls that can take more than a moment: what is being
// done and how far it is (N/M). Only on a terminal, never with --json, --quiet or --dry-run;
// without colour under NO_COLOR or --no-color; nothing at all for pipes. It appears after a
// short delay, so that quick calls (nearly all of them) never flash one. ora draws it, and is
// loaded only then.
import type { Ora } from 'ora';
import type { Ctx } from '../core/context.ts';
import type { Operation, Outcome, Plan } from '../core/runner.ts';
import type { Step } from '../plan/steps.ts';
import { isTerminal, writeAround } from '../tty.ts';
import { colorLevel } from './color.ts';

const DELAY_MS = 200;

export interface Progress {
  text(t: string): void;
  stop(): void;
}

const none: Progress = { text() {}, stop() {} };

export function progressWanted(ctx: Pick<Ctx, 'json' | 'quiet' | 'dryRun'>): boolean {
  return !ctx.json && !ctx.quiet && !ctx.dryRun && process.env.TERM !== 'dumb' && isTerminal(2);
}

/** One line, as wide as the terminal allows: a wrapped line could not be cleared. */
const fit = (t: string) => {
  const width = Math.max(20, (process.stderr.columns || 80) - 4);
  return t.length > width ? `${t.slice(0, width - 1)}…` : t;
};

export function startProgress(ctx: Pick<Ctx, 'json' | 'quiet' | 'dryRun'>, initial: string): Progress {
  if (!progressWanted(ctx)) return none;
  let text = initial;
  let spinner: Ora | null = null;
  let stopped = false;
  const timer = setTimeout(async () => {
    const { default: ora } = await import('ora');
    if (stopped) return;
    // A terminal that reports no size (a pty nobody sized, as script(1) makes without one)
    // says 0 columns, which ora divides by: 80, as it assumes when there is no size at all.
    if (!process.stderr.columns) process.stderr.columns = 80;
    const s = ora({ text: fit(text), stream: process.stderr, isEnabled: true, discardStdin: false, color: colorLevel(2) ? 'cyan' : false });
    spinner = s.start();
    // brnet writes with write(2), which ora cannot see: the line is cleared first, drawn again after.
    writeAround((writeIt) => {
      s.clear();
      writeIt();
      s.render();
    });
  }, DELAY_MS);
  return {
    text(t) {
      text = t;
      if (spinner) spinner.text = fit(t);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      writeAround(null);
      spinner?.stop();
    },
  };
}

/**
 * Runs op with its steps counted: `3/40 what`, with the part being done for plans made of
 * parts (restore: one per network). Steps the runner adds (the firewall, the state) are not
 * counted; they come last.
 */
export async function runWithProgress<R>(ctx: Ctx, op: Operation<R>, run: (ctx: Ctx, op: Operation<R>) => Promise<Outcome<R>>): Promise<Outcome<R>> {
  if (!progressWanted(ctx)) return run(ctx, op);
  const progress = startProgress(ctx, op.what);
  try {
    return await run(ctx, counted(op, progress));
  } finally {
    progress.stop();
  }
}

/** The same operation, whose planned steps tell `progress` as each one starts. */
export function counted<R>(op: Operation<R>, progress: Progress): Operation<R> {
  return {
    what: op.what,
    async plan(state, host): Promise<Plan<R>> {
      const p = await op.plan(state, host);
      const total = p.steps.length + (p.afterFirewall?.length ?? 0) + (p.atEnd?.length ?? 0) + (p.parts ?? []).reduce((n, x) => n + x.steps.length, 0);
      if (total < 2) return p;
      let started = 0;
      const wrap = (steps: Step[], label?: string): Step[] =>
        steps.map((s) => ({
          show: s.show,
          ...(s.irreversible ? { irreversible: true } : {}),
          do: () => {
            started++;
            // The count first: a long `what` is cut at the terminal's width, the count never.
            progress.text(`${Math.min(started, total)}/${total} ${label ? `${label} (${op.what})` : op.what}`);
            return s.do();
          },
          ...(s.undo ? { undo: () => s.undo!() } : {}),
        }));
      return {
        ...p,
        steps: wrap(p.steps),
        ...(p.afterFirewall ? { afterFirewall: wrap(p.afterFirewall) } : {}),
        ...(p.atEnd ? { atEnd: wrap(p.atEnd) } : {}),
        ...(p.parts ? { parts: p.parts.map((x) => ({ ...x, steps: wrap(x.steps, x.what) })) } : {}),
      };
    },
  };
}
