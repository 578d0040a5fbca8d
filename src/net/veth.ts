// Kernel steps of veth pairs: adding one (two `ip -batch` processes whatever the options: one
// on the host, where the pair is created with its peer directly inside the namespace under its
// final name and MAC, then alias, bridge port, hairpin, up; one inside the namespace:
// addresses, links up, default routes), and deleting many in one tolerant `ip -force -batch`.
// Removal tolerates objects that disappeared behind brnet's back (a namespace deleted by its
// owner takes the veth with it): the goal is the state, not the journey.
import { existsSync, statSync } from 'node:fs';
import type { Step } from '../plan/steps.ts';
import type { Endpoint, Network } from '../state/schema.ts';
import { deviceMark, netnsMark } from './marks.ts';
import { commandError, run } from './exec.ts';
import { ipBatchStep } from './ipcmd.ts';
import { createArgv, createOwnNetns, deleteOwnNetns, inRunNetns } from './netns-own.ts';
import { randomVethName } from './names.ts';

/** A default route the namespace side adds: via the network's gateway, out of this endpoint. */
export interface DefaultRoute {
  gateway: string;
  endpoint: Pick<Endpoint, 'ifname'>;
}

/** A veth name that no device on the host has now (sysfs: no process). */
export function freeVethName(exists = (n: string) => existsSync(`/sys/class/net/${n}`)): string {
  for (let i = 0; i < 16; i++) {
    const name = randomVethName();
    if (!exists(name)) return name;
  }
  return randomVethName(); // sysfs is not this namespace's; the apply step retries on a clash
}

/** Host side of `endpoint add`, as `ip -batch` lines. */
export function hostAddLines(n: Network, ep: Endpoint, createNetns: string | null, instance: string | null): string[] {
  const mtu = n.mtu ? ` mtu ${n.mtu}` : '';
  const host = ep.hostIfname;
  return [
    ...(createNetns && inRunNetns(ep.netnsPath) ? [`netns add ${createNetns}`] : []),
    // The peer is born inside the namespace under its final name, MTU and MAC: nothing is
    // moved or renamed afterwards. iproute2 takes a path for `netns` (pid:PID included).
    `link add ${host}${mtu} type veth peer name ${ep.ifname} netns ${ep.netnsPath}${mtu} address ${ep.mac}`,
    `link set dev ${host} alias ${deviceMark(instance, n.name, ep.name)} master ${n.bridge}`,
    // Hairpin: the bridge may send a frame back out of the port it came in on, so an endpoint
    // reaches its own published port through the DNAT on the host.
    `link set dev ${host} type bridge_slave hairpin on`,
    `link set dev ${host} up`,
  ];
}

/**
 * Inside the namespace, as `ip -batch` lines. `routes`: the default routes this endpoint adds.
 * The interface carries the endpoint's mark, and the loopback of a namespace brnet created
 * the namespace's (net/marks.ts): what proves later that the namespace is still the one.
 */
export function nsAddLines(n: Network, ep: Endpoint, routes: readonly DefaultRoute[], kernelHasIpv6: boolean, instance: string | null): string[] {
  const dev = ep.ifname;
  const lines: string[] = [`link set dev ${dev} alias ${deviceMark(instance, n.name, ep.name)}`];
  const token = ep.netnsCreated ? ep.netnsIdentity?.token : null;
  if (token) lines.push(`link set dev lo alias ${netnsMark(instance, token)}`);
  // Without an IPv6 address the endpoint should not speak IPv6 at all (the reference driver
  // sets disable_ipv6 there, which needs a process in the namespace): no link-local address
  // means no DAD, router solicitations or MLD from it.
  if (!ep.ipv6 && kernelHasIpv6) lines.push(`link set dev ${dev} addrgenmode none`);
  if (ep.ipv4) lines.push(`addr add ${ep.ipv4} dev ${dev}`);
  // nodad: the address is brnet's to give, and waiting for DAD would delay the first packets.
  if (ep.ipv6) lines.push(`addr add ${ep.ipv6} dev ${dev} nodad`);
  lines.push('link set dev lo up', `link set dev ${dev} up`);
  for (const r of routes) lines.push(`route add default via ${r.gateway} dev ${r.endpoint.ifname}`);
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
export function vethAddStep(n: Network, ep: Endpoint, createNetns: string | null, instance: string | null): Step {
  const made = { ns: false, veth: false };
  // Outside /run/netns (rootless), the namespace is brnet's to make before the batch.
  const ownNs = createNetns !== null && !inRunNetns(ep.netnsPath);
  return {
    show: [...(ownNs ? [createArgv(ep.netnsPath).join(' ')] : []), ...hostAddLines(n, ep, createNetns, instance).map((l) => `ip ${l}`)],
    async do() {
      if (ownNs) {
        await createOwnNetns(ep.netnsPath);
        made.ns = true;
      }
      for (let attempt = 1; ; attempt++) {
        const lines = hostAddLines(n, ep, made.ns ? null : createNetns, instance);
        const input = `${lines.join('\n')}\n`;
        const r = await run(['ip', '-batch', '-'], { input, allowFail: true });
        const linkLine = lines.findIndex((l) => l.startsWith('link add')) + 1;
        const failed = r.code === 0 ? lines.length + 1 : failedLine(r.stderr) || lines.length + 1;
        if (linkLine > 1 && failed > 1) made.ns = true;
        if (failed > linkLine) made.veth = true;
        if (r.code === 0) {
          // A namespace just created is identified now, as every later call will check it.
          if (createNetns && ep.netnsIdentity) Object.assign(ep.netnsIdentity, statIdentity(ep.netnsPath));
          return;
        }
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
      if (made.ns && createNetns && !ownNs) lines.push(`netns del ${createNetns}`);
      if (lines.length) await run(['ip', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, allowFail: true });
      if (made.ns && ownNs) await deleteOwnNetns(ep.netnsPath);
    },
  };
}

export function nsConfigStep(
  n: Network,
  ep: Endpoint,
  routes: readonly DefaultRoute[],
  instance: string | null,
  kernelHasIpv6 = existsSync('/proc/sys/net/ipv6'),
): Step {
  // No undo of its own: deleting the veth (the previous step's undo) takes the addresses and
  // routes with it.
  return ipBatchStep(nsAddLines(n, ep, routes, kernelHasIpv6, instance), [], ep.netnsPath);
}

/** dev and ino of a namespace file (zero when it cannot be read: the identity then proves nothing). */
export function statIdentity(path: string): { dev: number; ino: number } {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return { dev: 0, ino: 0 };
  }
}

const GONE = /Cannot find device|No such file|does not exist|Invalid argument/i;

/** `ip -force -batch` that ignores lines failing only because their object is already gone. */
export function tolerantBatchStep(lines: string[]): Step {
  return {
    show: lines.map((l) => `ip ${l}`),
    irreversible: true,
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

/** Waits for veths to leave with their namespaces; deletes those still there after the wait. */
export function vethsGoneStep(veths: string[]): Step {
  const budgetMs = 250 + 10 * veths.length;
  return {
    show: veths.map((v) => `# ${v} goes with its namespace (else, after ${budgetMs} ms: ip link del dev ${v})`),
    irreversible: true,
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
