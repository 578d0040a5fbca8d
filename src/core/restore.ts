// `brnet restore`: make the kernel match the state again after a reboot, a firewall flush or
// reload, or a crash. Built on the same comparison as `check`, so a second run finds nothing
// to do and changes nothing.
import { applyPayload, diffPayload, type JumpOps, normalizeSpec } from '../firewall/iptables.ts';
import { type Family, type Jump, TABLES, enabledFamilies, jumps } from '../firewall/rules.ts';
import { bridgeUpSteps } from '../net/bridge.ts';
import { ipBatchStep } from '../net/ipcmd.ts';
import type { Endpoint, State } from '../state/schema.ts';
import { nsConfigStep, vethAddStep } from '../net/veth.ts';
import { defaultRouteOwners, membersIn } from './default-routes.ts';
import { type Ctx, readOnly } from './context.ts';
import { type Comparison, compare } from './drift.ts';
import { type Host, liveHost } from './host.ts';
import type { Operation } from './runner.ts';
import type { Step } from '../plan/steps.ts';

export async function check(ctx: Ctx) {
  const state = await readOnly(ctx);
  const cmp = await compare(state, liveHost());
  return { drift: cmp.drift, stale: cmp.stale };
}

export interface Restored {
  drift: Comparison['drift'];
  stale: Comparison['stale'];
}

export function restore(): Operation<Restored> {
  return {
    what: 'restore',
    plan: async (state, host) => {
      const cmp = await compare(state, host);
      const recreated: Endpoint[] = [];
      const steps = [...linkSteps(state, cmp, host, recreated), ...firewallSteps(state, cmp)];
      return {
        // A re-created veth may have needed a new host-side name (a clash): record it.
        state: recreated.length ? state : null,
        steps,
        firewall: 'none', // the repair of the rules is among the steps, from what the kernel has
        ...(cmp.drift.length ? { progress: `restoring ${cmp.drift.length} difference(s)…` } : {}),
        result: { drift: cmp.drift, stale: cmp.stale },
      };
    },
  };
}

function linkSteps(state: State, cmp: Comparison, host: Host, recreated: Endpoint[]): Step[] {
  const steps: Step[] = [];
  // Leftovers first: a crashed `network create` may have left the very bridge name we need.
  if (cmp.orphanLinks.length) {
    steps.push(ipBatchStep(cmp.orphanLinks.map((l) => `link del dev ${l}`)));
  }
  for (const n of state.networks) {
    steps.push(...bridgeUpSteps(n, cmp.host, state.config).filter((s) => s.show.length));
    for (const ep of n.endpoints) {
      if (!host.netnsExists(ep.netnsPath)) continue; // stale: reported, not repaired
      const master = host.linkMaster(ep.hostIfname);
      if (master === undefined) {
        // The namespace survived but the veth did not (deleted by hand, or the bridge was):
        // attach the endpoint again with the same name, MAC, addresses and routes.
        const routes = defaultRouteOwners(membersIn(state, ep.netnsPath)).filter((o) => o.endpoint === ep);
        steps.push(vethAddStep(n, ep, null), nsConfigStep(ep, routes));
        recreated.push(ep);
      } else if (master !== n.bridge) {
        steps.push(ipBatchStep([`link set dev ${ep.hostIfname} master ${n.bridge}`, `link set dev ${ep.hostIfname} type bridge_slave hairpin on`, `link set dev ${ep.hostIfname} up`]));
      }
    }
  }
  return steps;
}

const sameJump = (a: { table: string; chain: string; spec: string }, j: Jump) =>
  a.table === j.table && a.chain === j.chain && a.spec === normalizeSpec(j.spec);

function firewallSteps(state: State, cmp: Comparison): Step[] {
  const steps: Step[] = [];
  for (const f of enabledFamilies(state) as Family[]) {
    const k = cmp.kernel[f];
    if (!k) continue;
    const want = TABLES.some((t) => cmp.desired[f][t].size > 0);
    const ops: JumpOps = { add: [], remove: [] };
    for (const j of jumps()) {
      const n = k.jumps.filter((x) => sameJump(x, j)).length;
      if (want && n === 0) ops.add.push(j);
      // Exactly one copy is right; position is left alone so that a second restore is a no-op.
      const extra = want ? Math.max(0, n - 1) : n;
      for (let i = 0; i < extra; i++) ops.remove.push(j);
    }
    for (const x of k.jumps) {
      if (!jumps().some((j) => sameJump(x, j))) ops.remove.push({ table: x.table, chain: x.chain, spec: x.spec });
    }
    const payload = diffPayload(k.tables, cmp.desired[f], ops);
    if (!payload) continue;
    const cmd = f === 4 ? 'iptables-restore' : 'ip6tables-restore';
    steps.push({ show: [`${cmd} --noflush <<'EOF'\n${payload}EOF`], do: () => applyPayload(f, payload) });
  }
  return steps;
}

