// With `userland-proxy` on, every published TCP and UDP binding has a proxy process
// (net/proxy.ts). Like the firewall rules, the proxies follow from the state: a change's steps
// are the difference between the bindings before and after it, so publish, unpublish,
// `endpoint add -p`, `endpoint rm`, `network rm`, `reset`, `batch` and the migration of
// `config set userland-proxy` all get them from the runner. Each proxy's pid and start time
// are recorded on its binding (`proxy`).
//
// Lifetime: a proxy started by a call waits for that call's "commit", sent once the state
// that records it is written (commitProxies); a call that fails or dies before then leaves no
// proxy. A proxy stopped by a call that then fails is started again by the rollback, and the
// old state is written once more with its new pid (afterRollback).
import { type Step, pooled } from '../plan/steps.ts';
import { deviceMark, markPrefix } from '../net/marks.ts';
import { type FoundProxy, type ProxySpec, type StartedProxy, describeProxy, findProxies, proxyAlive, startProxy, stopProxy } from '../net/proxy.ts';
import type { Listener } from '../net/ports.ts';
import type { Endpoint, Port, State } from '../state/schema.ts';
import { type Binding, bindingsByKey } from './lookup.ts';

/**
 * What the proxy of a binding serves, or null for a binding without one: the proxy is off,
 * SCTP (kernel NAT only, as documented), a routed network's opened port (no host port), or an
 * endpoint without an address to forward to. A binding on an IPv6 host address goes to the
 * endpoint's IPv6 address, or to its IPv4 one when it has none (6-to-4).
 */
export function proxySpecOf(state: State, b: Binding): ProxySpec | null {
  const { port, ep, net } = b;
  if (!state.config.userlandProxy || net.internal) return null;
  if ((port.proto !== 'tcp' && port.proto !== 'udp') || port.hostPort === 0) return null;
  const v6 = port.hostIp.includes(':');
  const to = (v6 ? (ep.ipv6 ?? ep.ipv4) : ep.ipv4)?.split('/')[0];
  if (!to) return null;
  return { proto: port.proto, hostIp: port.hostIp, hostPort: port.hostPort, toIp: to, toPort: port.containerPort };
}

/** Bindings only a proxy can serve: on an IPv6 host address, to an endpoint without IPv6. */
export const proxyOnly = (ep: Endpoint, p: Port): boolean => p.hostIp.includes(':') && ep.ipv6 === null;

const sameSpec = (a: ProxySpec | null, b: ProxySpec | null) => a !== null && b !== null && describeProxy(a) === describeProxy(b);
export const proxyMark = (state: State, b: Binding) => deviceMark(state.instance, b.net.name, b.ep.name);

/**
 * The host sockets of the proxies recorded when this call read its state ("proto ip port").
 * They are brnet's own listeners, not someone else's: a port handed from one binding to
 * another in one batch is still held by the old proxy while the new binding is planned.
 */
const recordedSockets = new Set<string>();
const socketKey = (proto: string, ip: string, port: number) => `${proto} ${ip} ${port}`;

export function noteProxySockets(state: State): void {
  for (const b of bindingsByKey(state).values()) if (b.port.proxy) recordedSockets.add(socketKey(b.port.proto, b.port.hostIp, b.port.hostPort));
}

/** Is this listening socket a proxy of brnet's, recorded in `state` or when the call began? */
export function isProxySocket(state: State, l: Listener): boolean {
  const k = socketKey(l.proto, l.ip, l.port);
  if (recordedSockets.has(k)) return true;
  return state.networks.some((n) => n.endpoints.some((e) => e.ports.some((p) => p.proxy && socketKey(p.proto, p.hostIp, p.hostPort) === k)));
}

/** Started by this call and not yet committed; restarted by a rollback. */
const started = new Set<StartedProxy>();
const restarted = new Set<StartedProxy>();

function startStep(mark: string, b: Binding, spec: ProxySpec): Step {
  let mine: StartedProxy | null = null;
  return {
    show: [`# start userland proxy ${describeProxy(spec)} (${b.net.name}/${b.ep.name})`],
    async do() {
      mine = await startProxy(mark, spec);
      started.add(mine);
      b.port.proxy = mine.id;
    },
    async undo() {
      if (!mine) return;
      started.delete(mine);
      await mine.kill();
      delete b.port.proxy;
    },
  };
}

function stopStep(mark: string, b: Binding, spec: ProxySpec | null, id: NonNullable<Port['proxy']>): Step {
  return {
    show: [`# stop userland proxy ${id.pid}${spec ? ` ${describeProxy(spec)}` : ''} (${b.net.name}/${b.ep.name})`],
    async do() {
      await stopProxy(id);
      if (b.port.proxy === id) delete b.port.proxy;
    },
    async undo() {
      if (!spec) return;
      const again = await startProxy(mark, spec).catch(() => null);
      if (!again) return; // `check` reports it missing, `restore` starts it
      restarted.add(again);
      b.port.proxy = again.id;
    },
  };
}

/**
 * The proxies to stop and start from one state to the next: stops first, so that a port
 * handed from one binding to another in one call (a batch) is free for the new proxy.
 */
export function proxySteps(from: State, to: State): Step[] {
  if (!from.config.userlandProxy && !to.config.userlandProxy && !hasProxies(from)) return [];
  const before = bindingsByKey(from);
  const after = bindingsByKey(to);
  const stops: Step[] = [];
  const starts: Step[] = [];
  for (const [k, b] of before) {
    if (!b.port.proxy) continue;
    const was = proxySpecOf(from, b);
    const next = after.get(k);
    const want = next ? proxySpecOf(to, next) : null;
    if (next && sameSpec(was, want)) {
      next.port.proxy ??= b.port.proxy; // a planner's copy of the binding keeps its proxy
      continue;
    }
    stops.push(stopStep(proxyMark(from, b), b, was, b.port.proxy));
    if (next && next.port !== b.port) delete next.port.proxy;
  }
  for (const [k, b] of after) {
    const spec = proxySpecOf(to, b);
    if (!spec) continue;
    const prev = before.get(k);
    const was = prev ? proxySpecOf(from, prev) : null;
    // A binding that had its proxy before keeps it; one that should have had one and has no
    // record (a restore that could not start it) is `restore`'s to repair, not the business
    // of an unrelated change, which would fail on it.
    if (prev && sameSpec(was, spec)) continue;
    starts.push(startStep(proxyMark(to, b), b, spec));
  }
  return [...(stops.length ? [pooled(stops, 32)] : []), ...(starts.length ? [pooled(starts, START_WIDTH)] : [])];
}

/** Proxies started at a time: each start is about 60 ms of CPU (the runtime's own start-up). */
const START_WIDTH = 4;

const hasProxies = (s: State) => s.networks.some((n) => n.endpoints.some((e) => e.ports.some((p) => p.proxy)));

/** After the state is written: the proxies this call started go on by themselves. */
export async function commitProxies(): Promise<void> {
  const all = [...started, ...restarted];
  started.clear();
  restarted.clear();
  await Promise.all(all.map((p) => p.commit()));
}

/**
 * After a rollback: proxies the rollback started again have new pids, which the state as it
 * was must record (`write`) before they may go on.
 */
export async function afterRollback(write: () => Promise<void>): Promise<void> {
  started.clear();
  if (!restarted.size) return;
  await write();
  await commitProxies();
}

export interface ProxyDrift {
  drift: { kind: 'missing' | 'leftover'; what: string }[];
  /** The steps that repair it (`restore`). */
  repair: Step[];
}

/**
 * `check` and `restore`: bindings whose proxy is not running (killed, or gone with a reboot;
 * a recorded pid now held by another process counts as missing, and that process is never
 * signalled), and proxies of this instance that no binding records (leftover).
 */
export function proxyDrift(state: State, found: (prefix: string) => FoundProxy[] = findProxies): ProxyDrift {
  const out: ProxyDrift = { drift: [], repair: [] };
  const starts: Step[] = [];
  const known = new Set<string>();
  // With the proxy off and none recorded, no call of this instance can have left one: stops
  // run before the state that drops them is written, and starts exit unless committed. The
  // scan of /proc (a read per process on the host) is then skipped.
  const live = state.instance && (state.config.userlandProxy || hasProxies(state)) ? found(`${markPrefix(state.instance)}:`) : [];
  for (const b of bindingsByKey(state).values()) {
    const spec = proxySpecOf(state, b);
    const id = b.port.proxy;
    const mark = proxyMark(state, b);
    const alive = id && spec ? proxyAlive(id, mark, spec) : false;
    if (id && alive) known.add(`${id.pid}/${id.start}`);
    const label = `${b.net.name}/${b.ep.name}`;
    if (spec && !alive) {
      out.drift.push({ kind: 'missing', what: `userland proxy for ${label} ${describeProxy(spec)}${id ? ` (pid ${id.pid} is not running it)` : ''}` });
      starts.push(startStep(mark, b, spec));
    } else if (!spec && id) {
      delete b.port.proxy; // the proxy is off: a recorded one is not wanted (found below if alive)
    }
  }
  for (const p of live) {
    if (known.has(`${p.pid}/${p.start}`)) continue;
    out.drift.push({ kind: 'leftover', what: `userland proxy ${p.pid} ${describeProxy(p.spec)} (${p.mark})` });
    out.repair.push({ show: [`# stop userland proxy ${p.pid} ${describeProxy(p.spec)}`], do: () => stopProxy(p) });
  }
  if (starts.length) out.repair.push(pooled(starts, START_WIDTH)); // after the stops: a leftover may hold the port
  return out;
}

/** Should this binding have a running proxy, and has it none? (`port ls`) */
export function proxyDown(state: State, b: Binding): boolean {
  const spec = proxySpecOf(state, b);
  return spec !== null && !(b.port.proxy && proxyAlive(b.port.proxy, proxyMark(state, b), spec));
}

/**
 * The recorded proxies that are not running (`restore --watch` asks every few seconds: a
 * proxy's exit makes no firewall news), as "pid/start" keys.
 */
export function deadProxies(state: State): string[] {
  const out: string[] = [];
  for (const b of bindingsByKey(state).values()) {
    const id = b.port.proxy;
    const spec = proxySpecOf(state, b);
    if (id && spec && !proxyAlive(id, proxyMark(state, b), spec)) out.push(`${id.pid}/${id.start}`);
  }
  return out;
}

/** `reset`: every proxy of this instance that no binding records (the recorded ones stop with their bindings). */
export function leftoverProxies(state: State, found: (prefix: string) => FoundProxy[] = findProxies): { what: string[]; steps: Step[] } {
  if (!state.instance) return { what: [], steps: [] };
  const recorded = new Set<string>();
  for (const b of bindingsByKey(state).values()) if (b.port.proxy) recorded.add(`${b.port.proxy.pid}/${b.port.proxy.start}`);
  const left = found(`${markPrefix(state.instance)}:`).filter((p) => !recorded.has(`${p.pid}/${p.start}`));
  return {
    what: left.map((p) => `userland proxy ${p.pid}`),
    steps: left.length ? [{ show: left.map((p) => `# stop userland proxy ${p.pid} ${describeProxy(p.spec)}`), do: async () => void (await Promise.all(left.map((p) => stopProxy(p)))) }] : [],
  };
}
