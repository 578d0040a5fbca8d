// The one way a mutating command runs: lock → read → plan → (print | apply with rollback) →
// write, for one operation or for a batch of them.
//
// An operation's planner returns the state it wants and the kernel steps that get there; the
// runner adds the firewall change between the two states itself (once per operation, or once
// per batch), puts it where the planner said, and runs what must follow the firewall commit
// (conntrack cleanups) and what can wait until the end (namespace teardown) after it. The
// state file is written last, as the plan's final step, so a failure anywhere rolls back the
// kernel and leaves the file as it was; the lock is held throughout, so concurrent calls
// serialise.
import { wrap } from '../errors.ts';
import { type Step, applyPlan, concurrently, planText, rollbackAfter, runSteps } from '../plan/steps.ts';
import type { State } from '../state/schema.ts';
import { type Db, readState, withLock } from '../state/store.ts';
import { type Ctx, requireRoot } from './context.ts';
import { type Host, liveHost } from './host.ts';

export interface Plan<R> {
  /** The new state; null when nothing changes. */
  state: State | null;
  /** Kernel steps, in order. */
  steps: Step[];
  /**
   * Where the firewall change between the states goes: before the steps (the default: rules
   * are in place before anything answers), at the same time (both only wait on the kernel),
   * after them (they need the devices), or nowhere (the planner repairs the rules itself).
   */
  firewall?: 'before' | 'with' | 'after' | 'none';
  /** Steps that must follow the firewall commit (conntrack cleanups). */
  afterFirewall?: Step[];
  /** Steps that may as well run last (waiting for namespaces to go); a batch runs all of them together. */
  atEnd?: Step[];
  /** For the user, whatever happens next (stderr). */
  notes?: string[];
  /** For the user, only when the plan is applied (stderr). */
  progress?: string;
  result: R;
}

export interface Operation<R> {
  /** What it does, for errors while applying: "add endpoint web/app". */
  what: string;
  /**
   * Bad input has been refused when the operation exists; planning sees the locked state and
   * reads the host only through `host`, and changes nothing.
   */
  plan(state: State, host: Host): Promise<Plan<R>>;
}

export interface Outcome<R> {
  result: R;
  /** The plan's text with --dry-run; null when it was applied. */
  plan: string | null;
}

export async function run<R>(ctx: Ctx, op: Operation<R>): Promise<Outcome<R>> {
  requireRoot(ctx);
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const { plan, text } = await dryRun(db.data, op, liveHost());
    tell(ctx, plan, false);
    return { result: plan.result, plan: text };
  }
  return locked(ctx, async (db) => {
    const host = liveHost();
    const p = await op.plan(db.data, host);
    tell(ctx, p, true);
    const steps = await assemble(db.data, p, host);
    try {
      await applyPlan(p.state ? [...steps, writeStep(db, p.state)] : steps);
    } catch (e) {
      // A planning error already says what is wrong with the request; one while applying is
      // a failed command or file deep down, which says nothing of what the user asked for.
      throw wrap(`cannot ${op.what}`, e);
    }
    return { result: p.result, plan: null };
  });
}

/** The plan of one operation and its text, as `--dry-run` prints it: what the unit tests snapshot. */
export async function dryRun<R>(state: State, op: Operation<R>, host: Host): Promise<{ plan: Plan<R>; text: string }> {
  const plan = await op.plan(state, host);
  return { plan, text: planText(await assemble(state, plan, host)) };
}

/**
 * `brnet batch`: the operations run one after the other under one lock, each planned on the
 * state the previous ones left and its kernel steps run at once (so the next one sees the
 * host as it now is); the firewall is committed once at the end, for the whole batch, then
 * the follow-ups of every operation, then one state write. Any failure rolls back every
 * operation of the batch. A failure is reported after its `label` ("line 3").
 */
export async function runBatch(ctx: Ctx, ops: { op: Operation<unknown>; label: string }[]): Promise<{ plan: string | null }> {
  requireRoot(ctx);
  const all = async (initial: State, done: Step[]) => {
    // Planners build new objects for what they change and share the rest, so `initial` stays
    // as read, and identity tells at the end which networks the batch changed.
    let state = initial;
    const texts: string[] = [];
    const after: Step[] = [];
    const atEnd: Step[] = [];
    for (const { op, label } of ops) {
      let p: Plan<unknown>;
      try {
        // A view per line: the lines before it have changed the host.
        p = await op.plan(state, liveHost());
      } catch (e) {
        throw wrap(label, e);
      }
      tell(ctx, p, !ctx.dryRun);
      if (ctx.dryRun) texts.push(planText(p.steps));
      else {
        try {
          await runSteps(p.steps, done);
        } catch (e) {
          throw wrap(`${label}: cannot ${op.what}`, e);
        }
      }
      after.push(...(p.afterFirewall ?? []));
      atEnd.push(...(p.atEnd ?? []));
      state = p.state ?? state;
    }
    const fw = await firewallBetween(initial, state, liveHost());
    // The waits for namespaces to go run side by side: the kernel tears them down together.
    const final = [...(fw ? [fw] : []), ...after, ...(atEnd.length ? [concurrently(atEnd)] : [])];
    return { state, texts, final };
  };
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const { texts, final } = await all(db.data, []);
    return { plan: [...texts, planText(final)].filter(Boolean).join('\n') };
  }
  return locked(ctx, async (db) => {
    const done: Step[] = [];
    try {
      const { state, final } = await all(db.data, done);
      await runSteps([...final, writeStep(db, state)], done);
    } catch (e) {
      throw await rollbackAfter(e, done);
    }
    return { plan: null };
  });
}

function locked<T>(ctx: Ctx, fn: (db: Db) => Promise<T>): Promise<T> {
  return withLock(
    ctx.stateDir,
    () => ctx.note('waiting for another brnet process to finish…'),
    async () => fn(await readState(ctx.stateDir)),
  );
}

function tell(ctx: Ctx, p: Plan<unknown>, applying: boolean): void {
  for (const n of p.notes ?? []) ctx.note(n);
  if (applying && p.progress) ctx.note(p.progress);
}

/** The plan's kernel steps with the firewall change put where the planner asked. */
async function assemble(from: State, p: Plan<unknown>, host: Host): Promise<Step[]> {
  const fw = p.state && p.firewall !== 'none' ? await firewallBetween(from, p.state, host) : null;
  let steps = p.steps;
  if (fw) {
    const where = p.firewall ?? 'before';
    steps = where === 'before' ? [fw, ...steps] : where === 'after' ? [...steps, fw] : [concurrently([fw, ...steps])];
  }
  return [...steps, ...(p.afterFirewall ?? []), ...(p.atEnd?.length ? [concurrently(p.atEnd)] : [])];
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

/** The firewall step from one state to another, rendering only the networks that changed. */
async function firewallBetween(from: State, to: State, host: Host): Promise<Step | null> {
  const [{ firewallStep }, { renderRules }] = await Promise.all([import('../firewall/iptables.ts'), import('../firewall/rules.ts')]);
  const only = changedNetworks(from, to);
  return firewallStep(renderRules(from, only), renderRules(to, only), { readKernel: host.firewall });
}

/**
 * The networks an operation changed. Planners build the new state with new objects for what
 * they change and share the rest, so identity tells; undefined (everything) when the
 * host-wide settings changed.
 */
function changedNetworks(from: State, to: State): Set<string> | undefined {
  if (from.config.iptables !== to.config.iptables || from.config.ip6tables !== to.config.ip6tables) return undefined;
  const before = new Map(from.networks.map((n) => [n.name, n]));
  const changed = new Set<string>();
  for (const n of to.networks) if (before.get(n.name) !== n) changed.add(n.name);
  for (const n of from.networks) if (!to.networks.includes(n)) changed.add(n.name);
  return changed;
}
