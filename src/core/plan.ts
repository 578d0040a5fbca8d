// A plan is the list of changes a command will make, as data: `--dry-run` prints it, and
// apply runs it with rollback. Each step knows how to describe itself (the exact commands
// and payloads), how to do itself, and how to undo itself.
import { BrnetError } from '../errors.ts';

export interface Step {
  /** Exact commands this step runs, for --dry-run (payloads included). */
  show: string[];
  do(): Promise<void>;
  /** Best effort; runs only if do() completed. */
  undo?(): Promise<void>;
}

export async function applyPlan(steps: Step[]): Promise<void> {
  const done: Step[] = [];
  for (const step of steps) {
    try {
      await step.do();
      done.push(step);
    } catch (err) {
      // do() may have half-happened (an `ip -batch` stops mid-way): its undo is written to
      // tolerate that, so it runs too.
      done.push(step);
      const undoErrors = await rollback(done);
      if (undoErrors.length && err instanceof BrnetError) {
        throw new BrnetError(err.code, `${err.message}; rollback also failed: ${undoErrors.join('; ')}`, {
          hint: 'run `brnet restore` to bring the host back to the recorded state',
        });
      }
      throw err;
    }
  }
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
