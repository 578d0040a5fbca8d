// `brnet restore`: make the kernel match the state again after a reboot, a firewall flush or
// reload, or a crash. Built on the same comparison as `check`, so a second run finds nothing
// to do and changes nothing.
import { anotherInstance } from '../errors.ts';
import { randomHex } from '../net/marks.ts';
import type { Pending } from '../state/journal.ts';
import { bridgeUpSteps } from '../net/bridge.ts';
import { ipBatchStep } from '../net/ipcmd.ts';
import { deleteOwnNetnsStep, inRunNetns } from '../net/netns-own.ts';
import { namedNetnsPath } from '../net/rootless.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import { nsConfigStep, statIdentity, tolerantBatchStep, vethAddStep } from '../net/veth.ts';
import { defaultRouteOwners, membersIn } from './default-routes.ts';
import { type Ctx, readOnly } from './context.ts';
import { type Comparison, compare } from './drift.ts';
import { type Host, liveHost } from './host.ts';
import type { Operation, Plan } from './runner.ts';
import type { Step } from '../plan/steps.ts';

export async function check(ctx: Ctx) {
  const state = await readOnly(ctx);
  const cmp = await compare(state, liveHost(ctx.stateDir));
  return { drift: [...cmp.drift, ...(await rootlessDrift(state)).map((m) => m.drift), ...(await proxyDrift(state)).drift], stale: cmp.stale };
}

/** Proxies missing, or left over (core/proxy-ports.ts); nothing to look for when none can exist. */
async function proxyDrift(state: State) {
  const { proxyDrift: drift } = await import('./proxy-ports.ts');
  return drift(state);
}

/** Inside rootlesskit, the published ports it no longer exposes (core/rootless-ports.ts). */
async function rootlessDrift(state: State): Promise<{ drift: Comparison['drift'][number]; expose: Step }[]> {
  if (!process.env.ROOTLESSKIT_STATE_DIR) return [];
  const { exposureDrift } = await import('./rootless-ports.ts');
  return (await exposureDrift(state)).missing.map((m) => ({ drift: { kind: 'missing' as const, what: `rootlesskit port ${m.binding}` }, expose: m.expose }));
}

export interface Restored {
  drift: Comparison['drift'];
  stale: Comparison['stale'];
}

/**
 * Host-wide parts first (leftovers, jumps, dispatcher chains, every network's chains, in one
 * `iptables-restore` per family), then each network on its own (bridge, sysctls, addresses,
 * namespaces brnet created, veths): one that cannot be repaired is reported and the others
 * are repaired anyway. Another instance's objects stop it before anything changes.
 */
export function restore(): Operation<Restored> {
  return {
    what: 'restore',
    plan: async (state, host) => {
      const cmp = await compare(state, host);
      if (cmp.foreign.length) throw anotherInstance(cmp.foreign[0]!.instance, cmp.foreign.map((x) => x.what));
      let changed = false;
      // A network whose bridge name is held by someone else's device gets no rules either: they
      // would filter and NAT that device's traffic.
      const repairable: State = { ...state, networks: state.networks.filter((n) => !cmp.conflicts.has(n)) };
      const steps = [...leftoverSteps(cmp), ...cmp.firewall.repair(repairable)];
      const created = new Set<string>();
      const pendingNetns: Pending[] = [];
      const parts: NonNullable<Plan<Restored>['parts']> = [];
      for (const n of state.networks) {
        const refused = cmp.conflicts.get(n);
        if (refused) {
          parts.push({ what: `network ${n.name}`, steps: [], refused });
          continue;
        }
        const net = networkSteps(state, n, cmp, host, created, pendingNetns);
        changed ||= net.changed;
        if (net.steps.length) parts.push({ what: `network ${n.name}`, steps: net.steps });
      }
      const exposures = await rootlessDrift(state);
      if (exposures.length) {
        parts.push({ what: 'rootlesskit ports', steps: exposures.map((x) => x.expose) });
        cmp.drift.push(...exposures.map((x) => x.drift));
        changed = true; // the new ids
      }
      const proxies = await proxyDrift(state);
      if (proxies.repair.length) {
        parts.push({ what: 'userland proxies', steps: proxies.repair });
        cmp.drift.push(...proxies.drift);
        changed = true; // the new pids
      }
      const fixed = cmp.drift.filter((d) => d.kind !== 'conflict' && d.kind !== 'foreign');
      return {
        // Re-created veths may have needed new host-side names, and re-created namespaces have
        // new identities.
        state: changed ? state : null,
        steps,
        parts,
        pendingNetns,
        migration: 'settle',
        firewall: 'none', // the repair of the rules is among the steps, from what the kernel has
        firewalld: repairable,
        ...(fixed.length ? { progress: `restoring ${fixed.length} difference(s)…` } : {}),
        result: { drift: fixed, stale: cmp.stale },
      };
    },
  };
}

function leftoverSteps(cmp: Comparison): Step[] {
  const [inRun, own] = [cmp.orphanNetns.filter((p) => inRunNetns(namedNetnsPath(p.name))), cmp.orphanNetns.filter((p) => !inRunNetns(namedNetnsPath(p.name)))];
  const lines = [...cmp.orphanLinks.map((l) => `link del dev ${l}`), ...inRun.map((p) => `netns del ${p.name}`)];
  return [...(lines.length ? [tolerantBatchStep(lines)] : []), ...(own.length ? [deleteOwnNetnsStep(own.map((p) => namedNetnsPath(p.name)))] : [])];
}

function networkSteps(
  state: State,
  n: Network,
  cmp: Comparison,
  host: Host,
  created: Set<string>,
  pendingNetns: Pending[],
): { steps: Step[]; changed: boolean } {
  const steps: Step[] = bridgeUpSteps(n, cmp.host, state.config, state.instance).filter((s) => s.show.length);
  let changed = false;
  const routesOf = (ep: Endpoint) => defaultRouteOwners(membersIn(state, ep.netnsPath)).filter((o) => o.endpoint === ep);
  for (const ep of n.endpoints) {
    if (cmp.recreate.has(ep)) {
      // A namespace brnet created, gone with a reboot: made again, under the same name, with
      // its endpoints' veths, addresses, MACs and routes. The first endpoint to need it makes it.
      const first = !created.has(ep.netns);
      created.add(ep.netns);
      const token = ep.netnsIdentity?.token ?? randomHex();
      ep.netnsIdentity = { dev: 0, ino: 0, start: null, token };
      if (first) pendingNetns.push({ name: ep.netns, token });
      steps.push(vethAddStep(n, ep, first ? ep.netns : null, state.instance), identityStep(ep), nsConfigStep(n, ep, routesOf(ep), state.instance));
      changed = true;
      continue;
    }
    if (!cmp.present.has(ep)) continue; // stale: reported, never configured
    const master = host.linkMaster(ep.hostIfname);
    if (master === undefined) {
      // The namespace survived but the veth did not (deleted by hand, or the bridge was):
      // attach the endpoint again with the same name, MAC, addresses and routes.
      steps.push(vethAddStep(n, ep, null, state.instance), nsConfigStep(n, ep, routesOf(ep), state.instance));
      changed = true;
    } else if (master !== n.bridge) {
      steps.push(ipBatchStep([`link set dev ${ep.hostIfname} master ${n.bridge}`, `link set dev ${ep.hostIfname} type bridge_slave hairpin on`, `link set dev ${ep.hostIfname} up`]));
    }
  }
  return { steps, changed };
}

/** Records the identity of a namespace made again (its new inode), for the endpoints in it. */
function identityStep(ep: Endpoint): Step {
  return {
    show: [],
    async do() {
      if (ep.netnsIdentity) Object.assign(ep.netnsIdentity, statIdentity(ep.netnsPath));
    },
  };
}
