// The one shape of every mutating command: lock → read → plan → (print | apply) → write.
// The state file is written only after the kernel has been changed successfully, and the
// lock is held throughout, so concurrent calls serialise and a failed call leaves no trace.
import { type Db, readState, withLock } from '../state/store.ts';
import type { State } from '../state/schema.ts';
import type { Ctx } from './context.ts';
import { type Step, applyPlan, planText } from './plan.ts';

export interface Planned<R> {
  state: State | null; // the new state; null when nothing changes
  steps: Step[];
  result: R;
}

export interface Outcome<R> {
  result: R;
  plan: string | null; // set with --dry-run
  steps: Step[];
}

export async function mutate<R>(ctx: Ctx, fn: (state: State) => Promise<Planned<R>>): Promise<Outcome<R>> {
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const p = await fn(structuredClone(db.data));
    return { result: p.result, plan: planText(p.steps), steps: p.steps };
  }
  return withLock(
    ctx.stateDir,
    () => ctx.note(`waiting for another brnet process to finish…`),
    async () => {
      const db = await readState(ctx.stateDir);
      const p = await fn(structuredClone(db.data));
      // The state write is the plan's last step: if it fails, the kernel changes are undone.
      const steps = p.state ? [...p.steps, writeStep(db, p.state)] : p.steps;
      await applyPlan(steps);
      return { result: p.result, plan: null, steps: p.steps };
    },
  );
}

function writeStep(db: Db, state: State): Step {
  return {
    show: [],
    async do() {
      db.data = state;
      await db.write();
    },
  };
}

export async function readOnly(ctx: Ctx): Promise<State> {
  return (await readState(ctx.stateDir)).data;
}
