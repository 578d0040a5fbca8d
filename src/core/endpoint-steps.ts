// Kernel steps that add and remove endpoints. Removal is shared by `endpoint rm` and
// `network rm --force`.
//
// Adding costs two `ip -batch` processes whatever the options: one on the host (veth pair
// created with its peer directly inside the namespace under its final name and MAC, alias,
// bridge port, hairpin, up) and one inside the namespace (addresses, links up, default
// routes). Removing costs one: every veth and namespace deletion in one `ip -force -batch`
// (a veth whose namespace goes is left to the namespace's teardown, see endpointsRemoveSteps).
// Removal tolerates objects that disappeared behind brnet's back (a namespace deleted by its
// owner takes the veth with it): the goal is the state, not the journey.
import { existsSync } from 'node:fs';
import { commandError, run } from '../net/exec.ts';
import type { Family } from '../net/addr-text.ts';
import type { HostView } from '../net/host.ts';
import { ipBatchStep } from '../net/ipcmd.ts';
import { aliasFor } from '../net/bridge.ts';
import { randomVethName } from '../net/names.ts';
import type { NetnsStatus } from '../net/netns.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import type { Step } from '../plan/steps.ts';

export interface Member {
  network: Network;
  endpoint: Endpoint;
}
export interface RouteOwner extends Member {
  family: Family;
  gateway: string;
}

/** Families for which the endpoint may carry the namespace's default route. */
export function routeFamilies(n: Network, ep: Endpoint): Family[] {
  if (n.internal) return [];
  const out: Family[] = [];
  if (ep.ipv4 && n.ipv4?.gateway) out.push(4);
  if (ep.ipv6 && n.ipv6?.gateway) out.push(6);
  return out;
}

/** Every brnet endpoint attached to the namespace at `netnsPath`. */
export function membersIn(state: State, netnsPath: string): Member[] {
  // A plain loop: called twice per endpoint added, over every endpoint of the host.
  const out: Member[] = [];
  for (const network of state.networks) for (const endpoint of network.endpoints) if (endpoint.netnsPath === netnsPath) out.push({ network, endpoint });
  return out;
}

/**
 * Which endpoint carries the default route of each family in one namespace: the first attached
 * (by `created`) among those with `defaultRoute`, family by family. A function of the state, so
 * `endpoint rm` can hand a route over when its carrier leaves, and restore can rebuild routes.
 */
export function defaultRouteOwners(members: Member[]): RouteOwner[] {
  const sorted = [...members].sort((a, b) => (a.endpoint.created < b.endpoint.created ? -1 : a.endpoint.created > b.endpoint.created ? 1 : 0));
  const owners: RouteOwner[] = [];
  for (const m of sorted) {
    if (!m.endpoint.defaultRoute) continue;
    for (const family of routeFamilies(m.network, m.endpoint)) {
      if (owners.some((o) => o.family === family)) continue;
      const gateway = (family === 4 ? m.network.ipv4 : m.network.ipv6)?.gateway;
      if (gateway) owners.push({ ...m, family, gateway });
    }
  }
  return owners;
}

const routeLine = (o: RouteOwner, verb: 'add' | 'replace') => `route ${verb} default via ${o.gateway} dev ${o.endpoint.ifname}`;

/** A veth name that no device on the host has now (sysfs: no process). */
export function freeVethName(exists = (n: string) => existsSync(`/sys/class/net/${n}`)): string {
  for (let i = 0; i < 16; i++) {
    const name = randomVethName();
    if (!exists(name)) return name;
  }
  return randomVethName(); // sysfs is not this namespace's; the apply step retries on a clash
}

/** Host side of `endpoint add`, as `ip -batch` lines. */
export function hostAddLines(n: Network, ep: Endpoint, createNetns: string | null): string[] {
  const mtu = n.mtu ? ` mtu ${n.mtu}` : '';
  const host = ep.hostIfname;
  return [
    ...(createNetns ? [`netns add ${createNetns}`] : []),
    // The peer is born inside the namespace under its final name, MTU and MAC: nothing is
    // moved or renamed afterwards. iproute2 takes a path for `netns` (pid:PID included).
    `link add ${host}${mtu} type veth peer name ${ep.ifname} netns ${ep.netnsPath}${mtu} address ${ep.mac}`,
    `link set dev ${host} alias ${aliasFor(n.name, ep.name)} master ${n.bridge}`,
    // Hairpin: the bridge may send a frame back out of the port it came in on, so an endpoint
    // reaches its own published port through the DNAT on the host.
    `link set dev ${host} type bridge_slave hairpin on`,
    `link set dev ${host} up`,
  ];
}

/** Inside the namespace, as `ip -batch` lines. `routes`: the default routes this endpoint adds. */
export function nsAddLines(ep: Endpoint, routes: RouteOwner[], kernelHasIpv6: boolean): string[] {
  const dev = ep.ifname;
  const lines: string[] = [];
  // Without an IPv6 address the endpoint should not speak IPv6 at all (the reference driver
  // sets disable_ipv6 there, which needs a process in the namespace): no link-local address
  // means no DAD, router solicitations or MLD from it.
  if (!ep.ipv6 && kernelHasIpv6) lines.push(`link set dev ${dev} addrgenmode none`);
  if (ep.ipv4) lines.push(`addr add ${ep.ipv4} dev ${dev}`);
  // nodad: the address is brnet's to give, and waiting for DAD would delay the first packets.
  if (ep.ipv6) lines.push(`addr add ${ep.ipv6} dev ${dev} nodad`);
  lines.push('link set dev lo up', `link set dev ${dev} up`);
  for (const r of routes) lines.push(routeLine(r, 'add'));
  return lines;
}

/** `ip -batch` failed at line N ("Command failed -:N"); 0 when the output does not say. */
function failedLine(stderr: string): number {
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : 0;
}

/**
 * The host batch of `endpoint add`. If the random veth name clashes with a device that appeared
 * since it was chosen, another name is tried (up to 3 times) and written into `ep`, which the
 * new state holds and writes at the end. Undo removes exactly what this step created: the veth
 * only if its `link add` line succeeded, the namespace only if `netns add` did.
 */
export function vethAddStep(n: Network, ep: Endpoint, createNetns: string | null): Step {
  const made = { ns: false, veth: false };
  return {
    show: hostAddLines(n, ep, createNetns).map((l) => `ip ${l}`),
    async do() {
      for (let attempt = 1; ; attempt++) {
        const lines = hostAddLines(n, ep, made.ns ? null : createNetns);
        const input = `${lines.join('\n')}\n`;
        const r = await run(['ip', '-batch', '-'], { input, allowFail: true });
        const linkLine = lines.findIndex((l) => l.startsWith('link add')) + 1;
        const failed = r.code === 0 ? lines.length + 1 : failedLine(r.stderr) || lines.length + 1;
        if (linkLine > 1 && failed > 1) made.ns = true;
        if (failed > linkLine) made.veth = true;
        if (r.code === 0) return;
        if (failed === linkLine && attempt <= 3 && /File exists/.test(r.stderr)) {
          const clash = await run(['ip', 'link', 'show', 'dev', ep.hostIfname], { allowFail: true });
          if (clash.code === 0) {
            ep.hostIfname = freeVethName();
            continue;
          }
        }
        throw commandError(r, input);
      }
    },
    async undo() {
      const lines: string[] = [];
      if (made.veth) lines.push(`link del dev ${ep.hostIfname}`);
      if (made.ns && createNetns) lines.push(`netns del ${createNetns}`);
      if (lines.length) await run(['ip', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, allowFail: true });
    },
  };
}

export function nsConfigStep(ep: Endpoint, routes: RouteOwner[], kernelHasIpv6 = existsSync('/proc/sys/net/ipv6')): Step {
  // No undo of its own: deleting the veth (the previous step's undo) takes the addresses and
  // routes with it.
  return ipBatchStep(nsAddLines(ep, routes, kernelHasIpv6), [], ep.netnsPath);
}

// ---------------------------------------------------------------------------------------
// removal

const GONE = /Cannot find device|No such file|does not exist|Invalid argument/i;

/** `ip -force -batch` that ignores lines failing only because their object is already gone. */
function tolerantBatchStep(lines: string[]): Step {
  return {
    show: lines.map((l) => `ip ${l}`),
    async do() {
      if (!lines.length) return;
      const input = `${lines.join('\n')}\n`;
      const r = await run(['ip', '-force', '-batch', '-'], { input, allowFail: true });
      if (r.code === 0) return;
      // stderr: the messages of each failing line, then "Command failed -:N".
      const real: string[] = [];
      let msgs: string[] = [];
      for (const l of r.stderr.split('\n')) {
        const m = /Command failed -:(\d+)/.exec(l);
        if (!m) {
          if (l.trim()) msgs.push(l.trim());
          continue;
        }
        if (!msgs.some((x) => GONE.test(x))) real.push(`${msgs.join('; ') || 'failed'} (at: ${lines[Number(m[1]) - 1] ?? '?'})`);
        msgs = [];
      }
      if (real.length) throw commandError({ ...r, stderr: real.join('\n') });
    },
  };
}

/**
 * When an endpoint that carried a namespace's default route leaves, the next endpoint in line
 * (see defaultRouteOwners) takes the route over, so the kernel keeps matching the state.
 * `route replace` runs before the old veth goes, so there is no moment without a route.
 */
function routeHandoverSteps(gone: Member[], next: State, status: (path: string) => NetnsStatus): Step[] {
  const steps: Step[] = [];
  for (const path of new Set(gone.map((g) => g.endpoint.netnsPath))) {
    const remaining = membersIn(next, path);
    if (!remaining.length) continue;
    const before = defaultRouteOwners([...remaining, ...gone.filter((g) => g.endpoint.netnsPath === path)]);
    const after = defaultRouteOwners(remaining);
    const lines = after
      .filter((o) => before.some((b) => b.family === o.family && gone.some((g) => g.endpoint === b.endpoint)))
      .map((o) => routeLine(o, 'replace'));
    if (lines.length && status(path) === 'ok') steps.push(ipBatchStep(lines, [], path));
  }
  return steps;
}

/**
 * Delete the endpoints' veths, and the namespaces brnet created that no endpoint uses any more.
 * A veth whose namespace goes too is not deleted on its own: deleting the namespace takes the
 * pair with it, and the kernel tears dying namespaces down in batches, while each `ip link
 * del` waits for RCU on its own, which adds up to seconds for many endpoints. The step
 * waits until those veths are gone from the host, so the call ends with the host as the state
 * says; a veth still there after the wait (a process keeps its namespace alive) is deleted.
 */
/** The removal, and the wait for veths that leave with their namespaces (which may run last). */
export function endpointsRemoveSteps(
  gone: Member[],
  host: HostView | null,
  next: State,
  status: (path: string) => NetnsStatus,
): { steps: Step[]; atEnd: Step[] } {
  const delNs = new Set<string>();
  for (const { endpoint: ep } of gone) {
    // netnsCreated is set only for named namespaces, whose spec is the name.
    if (ep.netnsCreated && !membersIn(next, ep.netnsPath).length) delNs.add(ep.netns);
  }
  const lines: string[] = [];
  const withNs: string[] = [];
  for (const { endpoint: ep } of gone) {
    if (host && !host.links.has(ep.hostIfname)) continue;
    if (ep.netnsCreated && delNs.has(ep.netns)) withNs.push(ep.hostIfname);
    else lines.push(`link del dev ${ep.hostIfname}`);
  }
  for (const name of delNs) lines.push(`netns del ${name}`);
  const steps = routeHandoverSteps(gone, next, status);
  if (lines.length) steps.push(tolerantBatchStep(lines));
  return { steps, atEnd: withNs.length ? [vethsGoneStep(withNs)] : [] };
}

/** Waits for veths to leave with their namespaces; deletes those still there after the wait. */
function vethsGoneStep(veths: string[]): Step {
  const budgetMs = 250 + 10 * veths.length;
  return {
    show: veths.map((v) => `# ${v} goes with its namespace (else, after ${budgetMs} ms: ip link del dev ${v})`),
    async do() {
      const deadline = performance.now() + budgetMs;
      let left = veths.filter((v) => existsSync(`/sys/class/net/${v}`));
      while (left.length && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2));
        left = left.filter((v) => existsSync(`/sys/class/net/${v}`));
      }
      if (left.length) await tolerantBatchStep(left.map((v) => `link del dev ${v}`)).do();
    },
  };
}
