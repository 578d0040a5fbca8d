// Inside rootlesskit, every published binding is also exposed on the real host through its
// port API (net/rootlesskit.ts). Like the firewall rules, the exposures follow from the state:
// the steps of a change are the difference between the bindings before and after it, so
// publish, unpublish, `endpoint add -p`, `endpoint rm`, `network rm` and `batch` all get them.
// Each exposure's id is recorded on its binding (`rootlesskit`), for removal and for `check`.
import type { Step } from '../plan/steps.ts';
import { type RlkPort, type RlkPortSpec, addPort, apiSocket, listPorts, removePort } from '../net/rootlesskit.ts';
import type { Port, State } from '../state/schema.ts';
import { type Binding, bindingsByKey } from './lookup.ts';


/**
 * What rootlesskit is asked to do for a binding, or null for one it does not carry: SCTP (its
 * builtin driver has only TCP and UDP), a routed network's opened port (no host port), an
 * endpoint without an address of that family, and `::` next to `0.0.0.0` on the same port
 * (the parent's `[::]` socket takes IPv4 too: one exposure serves both).
 */
export function exposureOf(b: Binding): RlkPortSpec | null {
  const { port, ep } = b;
  if ((port.proto !== 'tcp' && port.proto !== 'udp') || port.hostPort === 0) return null;
  const v6 = port.hostIp.includes(':');
  const addr = (v6 ? ep.ipv6 : ep.ipv4)?.split('/')[0];
  if (!addr) return null;
  if (port.hostIp === '::' && ep.ports.some((p) => p.hostIp === '0.0.0.0' && p.proto === port.proto && p.hostPort === port.hostPort)) return null;
  return { proto: port.proto, parentIP: port.hostIp, parentPort: port.hostPort, childIP: addr, childPort: port.containerPort };
}

const describeSpec = (s: RlkPortSpec) => `${s.parentIP.includes(':') ? `[${s.parentIP}]` : s.parentIP}:${s.parentPort}/${s.proto} -> ${s.childIP}:${s.childPort}`;

function exposeStep(sock: string, b: Binding, spec: RlkPortSpec): Step {
  return {
    show: [`# rootlesskit: POST /v1/ports ${JSON.stringify(spec)}`],
    async do() {
      b.port.rootlesskit = await addPort(sock, spec);
    },
    async undo() {
      if (b.port.rootlesskit !== undefined) await removePort(sock, b.port.rootlesskit).catch(() => {});
      delete b.port.rootlesskit;
    },
  };
}

function unexposeStep(sock: string, b: Binding): Step {
  const id = b.port.rootlesskit as number;
  const spec = exposureOf(b);
  return {
    show: [`# rootlesskit: DELETE /v1/ports/${id}${spec ? ` (${describeSpec(spec)})` : ''}`],
    do: () => removePort(sock, id),
    async undo() {
      if (spec) b.port.rootlesskit = await addPort(sock, spec).catch(() => id);
    },
  };
}

/** The exposures to add and remove from one state to the next; none outside rootlesskit. */
export function rootlessPortSteps(from: State, to: State): Step[] {
  const sock = apiSocket();
  if (!sock) return [];
  const before = bindingsByKey(from);
  const after = bindingsByKey(to);
  const steps: Step[] = [];
  for (const [k, b] of before) if (!after.has(k) && b.port.rootlesskit !== undefined) steps.push(unexposeStep(sock, b));
  for (const [k, b] of after) {
    if (before.has(k) || b.port.rootlesskit !== undefined) continue;
    const spec = exposureOf(b);
    if (spec) steps.push(exposeStep(sock, b, spec));
  }
  return steps;
}

export interface ExposureDrift {
  missing: { binding: string; spec: RlkPortSpec; expose: Step }[];
}

/**
 * `check` and `restore`: the bindings whose exposure rootlesskit no longer has (or never got:
 * published before brnet ran inside rootlesskit), each with the step that exposes it again.
 */
export async function exposureDrift(state: State): Promise<ExposureDrift> {
  const sock = apiSocket();
  if (!sock) return { missing: [] };
  const live = new Map<number, RlkPort>((await listPorts(sock)).map((p) => [p.id, p]));
  const missing: ExposureDrift['missing'] = [];
  for (const b of bindingsByKey(state).values()) {
    const spec = exposureOf(b);
    if (!spec) continue;
    const have = b.port.rootlesskit === undefined ? undefined : live.get(b.port.rootlesskit);
    if (have && have.parentPort === spec.parentPort && have.childPort === spec.childPort && have.childIP === spec.childIP) continue;
    const label = `${b.net.name}/${b.ep.name} ${describeSpec(spec)}`;
    missing.push({ binding: label, spec, expose: exposeStep(sock, b, spec) });
  }
  return { missing };
}
