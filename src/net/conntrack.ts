// Forgetting connection-tracking entries after the published ports change. NAT is decided
// on a flow's first packet only, so without this a UDP client that kept sending to a port
// before it was published would never reach the endpoint, and a flow DNATed into an endpoint
// would carry on after its port was unpublished (moby#8795, #44688, #44742).
//
// Cost: every `conntrack -D` walks the kernel's whole conntrack hash table (slow even when
// it is empty), once per filter. So the step lists the table once
// (/proc/net/nf_conntrack, or `conntrack -L` where the kernel lacks it), picks in JS the
// filters that match a tracked flow, and only then deletes, with all those filters in one
// `conntrack -R FILE`. Publishing 100 ports thus costs no process at all when no flow is
// affected, instead of 100 walks.
// Listing after the firewall change is safe: a flow created after it already follows the
// new rules. A temporary file rather than stdin, because conntrack opens /dev/stdin by name
// and Node's child stdin is a socketpair, which cannot be opened that way.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Step } from '../plan/steps.ts';
import type { Endpoint, Network, Port } from '../state/schema.ts';
import { commandError, run } from './exec.ts';
import { formatIp, parseIp } from './ipam.ts';
import { ipFamily, isUnspecified } from './ports.ts';

const addrOf = (cidr: string | null) => (cidr ? (cidr.split('/')[0] ?? null) : null);

/** A set of flows: protocol, original destination port, and destination address or family. */
export interface FlowFilter {
  proto: string;
  dport: number;
  /** Original destination address, or null for any of `family` (null: both families). */
  dst: string | null;
  family: 4 | 6 | null;
  /** The same filter as a `conntrack` command line (without the program name). */
  line: string;
}

/**
 * The flows the given bindings affect:
 * - NAT modes: flows addressed to the host port (on the host IP, when there is one), which
 *   covers both those that reached the host before the port was published and those DNATed
 *   into the endpoint while it was;
 * - routed mode: flows addressed straight to the endpoint's container port.
 * Twin bindings on 0.0.0.0 and :: share one filter without a family.
 */
export function flowFilters(net: Network, ep: Endpoint, ports: readonly Port[]): FlowFilter[] {
  const out = new Map<string, FlowFilter>();
  for (const p of ports) {
    const f = ipFamily(p.hostIp);
    const mode = f === 4 ? net.gatewayModeIpv4 : net.gatewayModeIpv6;
    if (mode === 'routed' || !isUnspecified(p.hostIp)) {
      const dst = mode === 'routed' ? addrOf(f === 4 ? ep.ipv4 : ep.ipv6) : p.hostIp;
      const dport = mode === 'routed' ? p.containerPort : p.hostPort;
      if (!dst) continue;
      out.set(`${p.proto} ${dst} ${dport}`, { proto: p.proto, dport, dst, family: f, line: `-D -p ${p.proto} --orig-dst ${dst} --orig-port-dst ${dport}` });
      continue;
    }
    const key = `${p.proto} * ${p.hostPort}`;
    const had = out.get(key);
    const family = had && had.family !== f ? null : f;
    const fam = family === null ? '' : ` -f ipv${family}`;
    out.set(key, { proto: p.proto, dport: p.hostPort, dst: null, family, line: `-D${fam} -p ${p.proto} --orig-port-dst ${p.hostPort}` });
  }
  return [...out.values()];
}

export interface Flow {
  proto: string;
  dst: string;
  dport: number;
}

/** The original-direction protocol, destination and destination port of `conntrack -L` lines. */
export function parseConntrackList(text: string): Flow[] {
  const out: Flow[] = [];
  for (const line of text.split('\n')) {
    // "tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.0.0.1 sport=40000 dport=8080 src=… "
    // (/proc/net/nf_conntrack puts "ipv4     2 " in front of the same fields)
    const proto = /^(?:ipv[46]\s+\d+\s+)?(\S+)\s/.exec(line)?.[1];
    const dst = / dst=(\S+)/.exec(line)?.[1];
    const dport = / dport=(\d+)/.exec(line)?.[1];
    const ip = dst ? parseIp(dst) : null;
    if (proto && ip && dport) out.push({ proto, dst: formatIp(ip), dport: Number(dport) });
  }
  return out;
}

export function filterMatches(f: FlowFilter, flow: Flow): boolean {
  if (f.proto !== flow.proto || f.dport !== flow.dport) return false;
  if (f.dst !== null) return f.dst === flow.dst;
  return f.family === null || f.family === ipFamily(flow.dst);
}

/**
 * The tracked flows of this network namespace. /proc/net/nf_conntrack (when the kernel has it)
 * costs no process; `conntrack -L` is the fallback. Both list both families.
 */
async function listFlows(): Promise<string> {
  try {
    return readFileSync('/proc/net/nf_conntrack', 'utf8');
  } catch {
    return (await run(['conntrack', '-L'])).stdout;
  }
}

/**
 * The plan step that deletes the conntrack entries of the flows `ports` affect; place it
 * after the firewall step, so that the flows re-created by the next packet meet the new
 * rules. A missing `conntrack` tool fails with exit 5 naming the package (src/net/exec.ts).
 */
export function conntrackStep(net: Network, ep: Endpoint, ports: readonly Port[]): Step {
  return flowsStep(flowFilters(net, ep, ports));
}

/** The step that deletes the flows of `filters` (those that match a flow listed). */
export function flowsStep(filters: readonly FlowFilter[]): Step {
  const all = filters.map((f) => `${f.line}\n`).join('');
  return {
    show: filters.length ? [`conntrack -R - <<'EOF'  # only the lines that match a flow listed\n${all}EOF`] : [],
    async do() {
      if (!filters.length) return;
      const flows = parseConntrackList(await listFlows());
      const lines = filters.filter((f) => flows.some((flow) => filterMatches(f, flow))).map((f) => `${f.line}\n`);
      if (!lines.length) return;
      const input = lines.join('');
      const dir = mkdtempSync(join(tmpdir(), 'brnet-ct-'));
      try {
        const file = join(dir, 'flows');
        writeFileSync(file, input, { mode: 0o600 });
        // `conntrack -D` exits 1 when it found nothing to delete (a flow may have ended since
        // the listing); with -R that is 0, but either way "no such flow" is success.
        const r = await run(['conntrack', '-R', file], { allowFail: true });
        if (r.code > 1) throw commandError(r, input);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
