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
import { BrnetError, wrap } from '../errors.ts';
import { randomHex } from '../net/marks.ts';
import { holdSignals, interruptedError, signalled } from '../signals.ts';
import { type Step, applyPlan, concurrently, planText, rollbackAfter, runSteps } from '../plan/steps.ts';
import type { State } from '../state/schema.ts';
import { type Pending, clearMigration, noteMigration, notePending, settlePending } from '../state/journal.ts';
import { type Db, readState, withLock } from '../state/store.ts';
import { type Ctx, requireRoot } from './context.ts';
import { type Host, liveHost } from './host.ts';
import { identityNow, quickPresence } from './identity.ts';
import { sysctlsChanged } from '../net/sysctl.ts';
import { withSysctlsRecorded } from './sysctl-record.ts';

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
  /** Namespaces the steps create: noted before they run (state/journal.ts). */
  pendingNetns?: Pending[];
  /**
   * The firewall moves to the other backend (noted before, cleared after the write), or, for
   * `restore`, whatever a killed move left is repaired (cleared after the write).
   */
  migration?: 'start' | 'settle';
  /** For the user, whatever happens next (stderr). */
  notes?: string[];
  /** The same, as warnings (`brnet: warning: …`). */
  warnings?: string[];
  /** For the user, only when the plan is applied (stderr). */
  progress?: string;
  /**
   * Parts applied after everything else, each on its own: one that fails is rolled back
   * alone, the others stay, and the call then fails naming it (`restore`, one per network).
   * `refused` is a part that cannot even be tried, and why.
   */
  parts?: { what: string; steps: Step[]; refused?: string }[];
  /**
   * The state whose bridges firewalld must let through (and whose rules go back after a reload
   * of firewalld), when it is not the new state: `restore` leaves out the networks whose bridge
   * name another device holds, and repairs firewalld even when the state stays.
   */
  firewalld?: State;
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
    const { plan, text } = await dryRun(withInstance(db.data), op, liveHost(ctx.stateDir), db.data);
    tell(ctx, plan, false);
    return { result: plan.result, plan: text };
  }
  return locked(ctx, async (db) => {
    const host = liveHost(ctx.stateDir);
    const state = withInstance(db.data);
    await noteProxies(state);
    const proven = proveLegacyEndpoints(state, host);
    const planned = await op.plan(state, host);
    // Identities just proven are written even by a call that changes nothing else.
    const p = planned.state === null && proven ? { ...planned, state, firewall: 'none' as const } : planned;
    tell(ctx, p, true);
    const steps = await assemble(db.data, p, host);
    const failures: string[] = [];
    try {
      await keepInstance(db, state);
      notePending(ctx.stateDir, p.pendingNetns ?? []);
      if (p.migration === 'start') noteMigration(ctx.stateDir);
      const fwd = await firewalldBetween(db.data, p, host, ctx.stateDir);
      if (!p.parts?.length) await applyPlan([...steps, ...fwd, ...(p.state ? [writeStep(db, p.state)] : [])]);
      else {
        // Each part stands on its own, so the state records what every part that worked did.
        await applyPlan(steps);
        for (const part of p.parts) failures.push(...(await applyPart(part)));
        await applyPlan(fwd);
        if (p.state) await writeStep(db, p.state).do();
      }
      // A plan that changes no state may still have set sysctls (`restore` after a reboot).
      if (!p.state && sysctlsChanged().size) await writeStep(db, state).do();
    } catch (e) {
      await rolledBack(db).catch(() => {});
      // A planning error already says what is wrong with the request; one while applying is
      // a failed command or file deep down, which says nothing of what the user asked for.
      throw wrap(`cannot ${op.what}`, asInterrupted(e));
    }
    await committed();
    if (signalled()) throw wrap(op.what, interruptedError(true));
    if (p.pendingNetns) settle(ctx, p.state ?? state);
    if (p.migration) clearMigration(ctx.stateDir);
    if (failures.length) throw new BrnetError('COMMAND_FAILED', `cannot ${op.what} ${failures.join('; ')}`, { hint: 'the rest was done; fix these and run it again' });
    return { result: p.result, plan: null };
  });
}

/** One part of a plan on its own: [] when applied, else what failed (rolled back). */
async function applyPart(part: NonNullable<Plan<unknown>['parts']>[number]): Promise<string[]> {
  if (part.refused) return [`${part.what}: ${part.refused}`];
  try {
    await applyPlan(part.steps);
    return [];
  } catch (e) {
    return [`${part.what}: ${e instanceof Error ? e.message : String(e)}`];
  }
}

/**
 * The state with its instance id (net/marks.ts): a state dir gets one with its first change.
 * It is written before that change, once planning has accepted the request, so that a call
 * killed half-way leaves objects carrying an id its state dir knows.
 */
function withInstance(state: State): State {
  return state.instance ? state : { ...state, instance: randomHex() };
}

/**
 * Endpoints recorded before namespace identities existed get one as soon as their namespace is
 * proven theirs (core/identity.ts: their marked veth is alive), written with the call's state;
 * the others stay unproven, that is stale. Costs nothing once every endpoint has one.
 */
function proveLegacyEndpoints(state: State, host: Host): boolean {
  let proven = false;
  for (const n of state.networks) {
    for (const ep of n.endpoints) {
      if (ep.netnsIdentity !== null || quickPresence(n, ep, state.instance, host) !== 'ok') continue;
      ep.netnsIdentity = identityNow(ep, host, null);
      proven = true;
    }
  }
  return proven;
}

async function keepInstance(db: Db, state: State): Promise<void> {
  if (db.data.instance === state.instance) return;
  db.data = { ...db.data, instance: state.instance };
  await db.write();
}

/** The plan of one operation and its text, as `--dry-run` prints it: what the unit tests snapshot. */
export async function dryRun<R>(state: State, op: Operation<R>, host: Host, from = state): Promise<{ plan: Plan<R>; text: string }> {
  const plan = await op.plan(state, host);
  const parts = (plan.parts ?? []).flatMap((x) => (x.refused ? [] : x.steps));
  return { plan, text: planText([...(await assemble(from, plan, host)), ...parts, ...(await firewalldBetween(from, plan, host))]) };
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
        p = await op.plan(state, liveHost(ctx.stateDir));
      } catch (e) {
        throw wrap(label, e);
      }
      tell(ctx, p, !ctx.dryRun);
      if (ctx.dryRun) texts.push(planText(p.steps));
      else {
        try {
          notePending(ctx.stateDir, p.pendingNetns ?? []);
          await runSteps(p.steps, done);
        } catch (e) {
          throw wrap(`${label}: cannot ${op.what}`, e);
        }
      }
      after.push(...(p.afterFirewall ?? []));
      atEnd.push(...(p.atEnd ?? []));
      state = p.state ?? state;
    }
    const host = liveHost(ctx.stateDir);
    const fw = await firewallBetween(initial, state, host);
    const fwd = await firewalldBetween(initial, { state, steps: [], result: null }, host, ctx.stateDir);
    // The waits for namespaces to go run side by side: the kernel tears them down together.
    const ports = [...(await rootlessPorts(initial, state)), ...(await proxies(initial, state))];
    const final = [...(fw ? [fw] : []), ...after, ...ports, ...(atEnd.length ? [concurrently(atEnd)] : []), ...fwd];
    return { state, texts, final };
  };
  if (ctx.dryRun) {
    const db = await readState(ctx.stateDir);
    const { texts, final } = await all(withInstance(db.data), []);
    return { plan: [...texts, planText(final)].filter(Boolean).join('\n') };
  }
  return locked(ctx, async (db) => {
    const done: Step[] = [];
    try {
      const initial = withInstance(db.data);
      await noteProxies(initial);
      proveLegacyEndpoints(initial, liveHost(ctx.stateDir));
      await keepInstance(db, initial);
      const { state, final } = await all(initial, done);
      await runSteps([...final, writeStep(db, state)], done);
      settle(ctx, state);
    } catch (e) {
      const err = await rollbackAfter(asInterrupted(e), done);
      await rolledBack(db).catch(() => {});
      throw err;
    }
    await committed();
    if (signalled()) throw interruptedError(true);
    return { plan: null };
  });
}

async function locked<T>(ctx: Ctx, fn: (db: Db) => Promise<T>): Promise<T> {
  const release = holdSignals((msg) => ctx.note(msg));
  try {
    return await withLock(
      ctx.stateDir,
      () => ctx.note('waiting for another brnet process to finish…'),
      async () => fn(await readState(ctx.stateDir)),
    );
  } finally {
    release();
  }
}

/** A step that failed because the signal reached its command too (a whole cgroup stopped). */
const asInterrupted = (e: unknown) => (signalled() && !(e instanceof BrnetError && e.code === 'INTERRUPTED') ? interruptedError(false) : e);

function tell(ctx: Ctx, p: Plan<unknown>, applying: boolean): void {
  for (const n of p.notes ?? []) ctx.note(n);
  for (const w of p.warnings ?? []) ctx.warn(w);
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
  const ports = p.state ? [...(await rootlessPorts(from, p.state)), ...(await proxies(from, p.state))] : [];
  return [...steps, ...(p.afterFirewall ?? []), ...ports, ...(p.atEnd?.length ? [concurrently(p.atEnd)] : [])];
}

/** The userland proxies to stop and start (core/proxy-ports.ts), after the rules they go with. */
const proxies = async (from: State, to: State): Promise<Step[]> => (await import('./proxy-ports.ts')).proxySteps(from, to);

/** The proxies' sockets as the call found them, which planning must not take for someone else's. */
async function noteProxies(state: State): Promise<void> {
  (await import('./proxy-ports.ts')).noteProxySockets(state);
}

/** Once the state is written, the proxies it records go on by themselves (core/proxy-ports.ts). */
async function committed(): Promise<void> {
  await (await import('./proxy-ports.ts')).commitProxies();
}

/** After a rollback, proxies it started again are recorded in the state as it was. */
async function rolledBack(db: Db): Promise<void> {
  await (await import('./proxy-ports.ts')).afterRollback(() => db.write());
}

/** Inside rootlesskit, the exposures of published ports on the real host (core/rootless-ports.ts). */
const rootlessPorts = async (from: State, to: State): Promise<Step[]> =>
  process.env.ROOTLESSKIT_STATE_DIR ? (await import('./rootless-ports.ts')).rootlessPortSteps(from, to) : [];

function settle(ctx: Ctx, state: State): void {
  settlePending(ctx.stateDir, new Set(state.networks.flatMap((n) => n.endpoints.map((e) => e.netnsIdentity?.token ?? ''))));
}

/** The state write, with the sysctls this call changed recorded (core/sysctl-record.ts). */
function writeStep(db: Db, state: State): Step {
  return {
    show: [],
    async do() {
      db.data = withSysctlsRecorded(state, sysctlsChanged());
      await db.write();
    },
  };
}

/** The firewall step from one state to another, rendering only the networks that changed. */
async function firewallBetween(from: State, to: State, host: Host): Promise<Step | null> {
  const { firewallChange } = await import('../firewall/index.ts');
  // A state that gets its instance id now had rules with the marks of before instances (or
  // none): every chain is re-declared with the new marks, and the old jumps replaced.
  const full = from.instance !== to.instance && from.networks.length > 0;
  return firewallChange(from, to, { iptables: host.firewall, nftables: host.nftables }, { only: changedNetworks(from, to), full });
}

/**
 * firewalld's step, last of all: binding a bridge needs nothing else, and a reload (when zone
 * or policy must be made) flushes every iptables table, so whatever the plan did to brnet's
 * rules is done by then and is put back right after it, from a fresh read of the kernel.
 */
async function firewalldBetween(from: State, p: Plan<unknown>, host: Host, stateDir?: string): Promise<Step[]> {
  const to = p.firewalld ?? p.state;
  if (!to) return [];
  const view = await host.firewalld();
  if (!view) return [];
  const [{ firewalldStep }, { firewallCompare }] = await Promise.all([import('../firewall/firewalld.ts'), import('../firewall/index.ts')]);
  const bridges = to.networks.map((n) => n.bridge);
  const gone = from.networks.map((n) => n.bridge).filter((b) => !bridges.includes(b));
  const putBack = async () => {
    const fresh = liveHost(stateDir);
    const cmp = await firewallCompare(to, { iptables: fresh.firewall, nftables: fresh.nftables, migrating: fresh.migrating });
    await applyPlan(cmp.repair(to));
  };
  const change = firewalldStep(view, bridges, gone, putBack);
  return change ? [change.step] : [];
}

/**
 * The networks an operation changed. Planners build the new state with new objects for what
 * they change and share the rest, so identity tells; undefined (everything) when the
 * host-wide settings changed.
 */
function changedNetworks(from: State, to: State): Set<string> | undefined {
  if (from.config.iptables !== to.config.iptables || from.config.ip6tables !== to.config.ip6tables) return undefined;
  if (from.config.firewallBackend !== to.config.firewallBackend || from.config.userlandProxy !== to.config.userlandProxy) return undefined;
  if (from.instance !== to.instance) return undefined;
  const before = new Map(from.networks.map((n) => [n.name, n]));
  const changed = new Set<string>();
  for (const n of to.networks) if (before.get(n.name) !== n) changed.add(n.name);
  for (const n of from.networks) if (!to.networks.includes(n)) changed.add(n.name);
  return changed;
}
