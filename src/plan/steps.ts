// A plan is the list of changes a command will make, as data: `--dry-run` prints it, and
// apply runs it with rollback. Each step knows how to describe itself (the exact commands
// and payloads), how to do itself, and how to undo itself.
import { BrnetError } from '../errors.ts';
import { stopIfSignalled } from '../signals.ts';

export interface Step {
  /** Exact commands this step runs, for --dry-run (payloads included). */
  show: string[];
  do(): Promise<void>;
  /** Best effort; runs only if do() completed. */
  undo?(): Promise<void>;
  /**
   * It deletes what cannot be made again (veths, namespaces): once it has started, the plan is
   * past the point of no return, and a signal no longer rolls it back but lets it finish.
   */
  irreversible?: boolean;
}

/**
 * Steps that do not depend on each other, run at the same time. It pays where the kernel waits
 * for an RCU grace period in each of them (deleting a bridge; committing deleted rules, once
 * per table): the waits overlap instead of adding up. Every part starts, so undo undoes every
 * part, in reverse (each undo tolerates a part that did not happen).
 */
export function concurrently(parts: Step[]): Step {
  if (parts.length === 1 && parts[0]) return parts[0];
  return {
    show: parts.flatMap((p) => p.show),
    irreversible: parts.some((p) => p.irreversible),
    async do() {
      const results = await Promise.allSettled(parts.map((p) => p.do()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async undo() {
      for (const p of [...parts].reverse()) await p.undo?.();
    },
  };
}

/**
 * Like concurrently, but at most `width` parts at a time (each part starts a process: a
 * hundred at once would only queue on the CPUs and multiply the memory in flight). The first
 * failure stops starting new parts; undo undoes the parts that completed.
 */
export function pooled(parts: Step[], width: number): Step {
  if (parts.length === 1 && parts[0]) return parts[0];
  const done: Step[] = [];
  return {
    show: parts.flatMap((p) => p.show),
    irreversible: parts.some((p) => p.irreversible),
    async do() {
      let next = 0;
      let failed: unknown = null;
      const lane = async () => {
        while (failed === null && next < parts.length) {
          const p = parts[next++] as Step;
          try {
            await p.do();
            done.push(p);
          } catch (e) {
            failed ??= e;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(width, parts.length) }, lane));
      if (failed !== null) throw failed;
    },
    async undo() {
      for (const p of [...done].reverse()) await p.undo?.();
    },
  };
}

/** Steps that must run one after the other, undone in reverse. */
export function inOrder(steps: (Step | null)[]): Step | null {
  const parts = steps.filter((s): s is Step => s !== null);
  if (parts.length <= 1) return parts[0] ?? null;
  const done: Step[] = [];
  return {
    show: parts.flatMap((p) => p.show),
    irreversible: parts.some((p) => p.irreversible),
    async do() {
      for (const p of parts) {
        done.push(p);
        await p.do();
      }
    },
    async undo() {
      for (const p of [...done].reverse()) await p.undo?.();
    },
  };
}

export async function applyPlan(steps: Step[], done: Step[] = []): Promise<void> {
  try {
    await runSteps(steps, done);
  } catch (err) {
    throw await rollbackAfter(err, done);
  }
}

/** Runs steps in order, recording each one started in `done`; no rollback. */
export async function runSteps(steps: Step[], done: Step[]): Promise<void> {
  for (const step of steps) {
    if (!done.some((d) => d.irreversible)) stopIfSignalled();
    // Recorded before do(): a step may half-happen (an `ip -batch` stops mid-way), and its
    // undo is written to tolerate that, so it runs too.
    done.push(step);
    await step.do();
  }
}

/** Undoes `done` in reverse and returns the error to report. */
export async function rollbackAfter(err: unknown, done: Step[]): Promise<unknown> {
  const undoErrors = await rollback(done);
  if (undoErrors.length && err instanceof BrnetError) {
    return new BrnetError(err.code, `${err.message}; rollback also failed: ${undoErrors.join('; ')}`, {
      hint: 'run `brnet restore` to bring the host back to the recorded state',
    });
  }
  return err;
}

async function rollback(done: Step[]): Promise<string[]> {
  const errors: string[] = [];
  for (const step of [...done].reverse()) {
    if (!step.undo) continue;
    try {
      await step.undo();
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  return errors;
}

export function planText(steps: Step[]): string {
  return steps.flatMap((s) => s.show).join('\n');
}
