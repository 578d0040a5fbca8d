// The one shape of every mutating command: lock → read → plan → (print | apply) → write.
// The state file is written only after the kernel has been changed successfully, and the
// lock is held throughout, so concurrent calls serialise and a failed call leaves no trace.
import { type Db, readState, withLock } from '../state/store.ts';
import type { State } from '../state/schema.ts';
import type { Ctx } from './context.ts';
import { type Step, applyPlan, planText, runSteps } from '../plan/steps.ts';

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

/**
 * `brnet batch`: many commands under one lock, one state write and one firewall commit.
 * Each command's kernel steps run at once (so the next command sees the host as it now is),
 * its firewall steps are dropped, and the session commits the firewall for the whole batch
 * at the end. Any failure rolls back every command of the batch.
 */
export interface BatchSession {
  state: State;
  done: Step[];
  plans: string[];
  /** Steps to run once the batch's firewall commit is in (conntrack cleanups). */
  after: Step[];
  /** Steps to run last of all (see Step.atEnd). */
  atEnd: Step[];
}

let session: BatchSession | null = null;
export function setBatchSession(s: BatchSession | null): void {
  session = s;
}

export async function mutate<R>(ctx: Ctx, fn: (state: State) => Promise<Planned<R>>): Promise<Outcome<R>> {
  if (session) {
    // No defensive copy: if a line fails, the whole batch is abandoned anyway.
    const p = await fn(session.state);
    const steps = p.steps.filter((s) => !s.firewall && !s.afterFirewall && !s.atEnd);
    session.after.push(...p.steps.filter((s) => s.afterFirewall));
    session.atEnd.push(...p.steps.filter((s) => s.atEnd));
    if (ctx.dryRun) session.plans.push(planText(steps));
    else await runSteps(steps, session.done);
    if (p.state) session.state = p.state;
    return { result: p.result, plan: null, steps }; // the batch prints the combined plan
  }
  // The state just read is handed over as it is (no defensive copy): operations build the new
  // state from new objects for what they change, which is also how firewallChange tells
  // what changed.
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const p = await fn(db.data);
    return { result: p.result, plan: planText(p.steps), steps: p.steps };
  }
  return withLock(
    ctx.stateDir,
    () => ctx.note(`waiting for another brnet process to finish…`),
    async () => {
      const db = await readState(ctx.stateDir);
      const p = await fn(db.data);
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

/**
 * The firewall step between two states. Inside a batch there is none: the batch commits the
 * firewall once at the end, and rendering the whole rule set for every line would make a
 * batch's cost grow with the square of its size.
 */
export async function firewallChange(from: State, to: State): Promise<Step | null> {
  if (session) return null;
  return firewallBetween(from, to);
}

/** The firewall step from one state to another, rendering only the networks that changed. */
export async function firewallBetween(from: State, to: State): Promise<Step | null> {
  const [{ firewallStep }, { renderRules }] = await Promise.all([import('../firewall/iptables.ts'), import('../firewall/rules.ts')]);
  const only = changedNetworks(from, to);
  return firewallStep(renderRules(from, only), renderRules(to, only));
}

/**
 * The networks an operation changed. Operations build the new state with new objects for what
 * they change and share the rest, so identity tells; undefined (everything) when the host-wide
 * settings changed.
 */
function changedNetworks(from: State, to: State): Set<string> | undefined {
  if (from.config.iptables !== to.config.iptables || from.config.ip6tables !== to.config.ip6tables) return undefined;
  const before = new Map(from.networks.map((n) => [n.name, n]));
  const changed = new Set<string>();
  for (const n of to.networks) if (before.get(n.name) !== n) changed.add(n.name);
  for (const n of from.networks) if (!to.networks.includes(n)) changed.add(n.name);
  return changed;
}

export async function readOnly(ctx: Ctx): Promise<State> {
  if (session) return session.state;
  return (await readState(ctx.stateDir)).data;
}
