// Published-port primitives: the SPEC grammar, host-IP overlap, the host's listening sockets
// (from /proc/net, no process) and the ephemeral port range. Parsing is pure so that it is
// tested as data; the readers are thin wrappers around the pure parsers.
// node:fs's callback readFile, not node:fs/promises: loading the latter pulls in readline
// (for FileHandle.readLines), which no call needs.
import { readFile, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { invalid } from '../errors.ts';
import { formatIp, parseIp } from './ipam.ts';

export type Proto = 'tcp' | 'udp' | 'sctp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp', 'sctp'];

/**
 * One container port to publish (or, for `unpublish`, to match), as a SPEC asked for it.
 * A SPEC with a container range gives one request per container port.
 */
export interface PortRequest {
  /** The SPEC this request came from, for messages. */
  spec: string;
  proto: Proto;
  /** Host address in canonical form, or null: the network's host binding IP, else all addresses. */
  hostIp: string | null;
  /**
   * Host ports to take the first free one from, both ends included: null = any port of the
   * ephemeral range; hostPort === hostPortEnd = exactly that port.
   */
  hostPort: number | null;
  hostPortEnd: number | null;
  containerPort: number;
}

export const UNSPECIFIED = { 4: '0.0.0.0', 6: '::' } as const;
import { hostPortText, ipFamily, isUnspecified } from './addr-text.ts';

export { hostPortText, ipFamily, isUnspecified };

/**
 * Do two host IPs of bindings on the same port and protocol collide? 0.0.0.0 stands for every
 * IPv4 address and :: for every IPv6 address; the families are separate, because brnet's
 * rules for them are (iptables vs ip6tables).
 */
export function hostIpsOverlap(a: string, b: string): boolean {
  if (ipFamily(a) !== ipFamily(b)) return false;
  return a === b || isUnspecified(a) || isUnspecified(b);
}

const PORT_RE = /^(\d{1,5})(?:-(\d{1,5}))?$/;

function parseRange(text: string, what: string, spec: string): [number, number] {
  const m = PORT_RE.exec(text);
  if (!m) throw invalid(`invalid port spec "${spec}": ${what} "${text}" is not a port or a range START-END`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const p of [start, end]) {
    if (p < 1 || p > 65535) throw invalid(`invalid port spec "${spec}": ${what} ${p} is not between 1 and 65535`);
  }
  if (end < start) throw invalid(`invalid port spec "${spec}": ${what} range ${text} ends before it starts`);
  return [start, end];
}

function parseHostIp(text: string, spec: string): string {
  const ip = parseIp(text);
  if (!ip) throw invalid(`invalid port spec "${spec}": "${text}" is not an IP address`);
  // An IPv4-mapped IPv6 address means the IPv4 address (as the reference driver does).
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return formatIp({ family: 4, value: ip.value & 0xffffffffn });
  return formatIp(ip);
}

/**
 * `[HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp|sctp]` → requests, one per container port.
 * Split on ':' from the right, so a bare IPv6 host IP works too; `[v6]` brackets are the
 * readable form. Throws `invalid` (exit 2) for anything malformed.
 */
export function parsePortSpec(spec: string): PortRequest[] {
  let rest = spec;
  let proto: Proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (!(PROTOS as readonly string[]).includes(p)) {
      throw invalid(`invalid port spec "${spec}": unknown protocol "${rest.slice(slash + 1)}"`, 'use tcp, udp or sctp');
    }
    proto = p as Proto;
    rest = rest.slice(0, slash);
  }
  let ipText = '';
  let hostText = '';
  let containerText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    const parts = close < 0 ? [] : rest.slice(close + 1).split(':');
    // "[IP]:HOSTPORT:PORT" or "[IP]::PORT": the part after "]" must start with ':' and
    // hold exactly a host port (maybe empty) and a container port.
    if (close < 0 || parts.length !== 3 || parts[0] !== '') {
      throw invalid(`invalid port spec "${spec}": a bracketed host IP is written [IP]:HOSTPORT:PORT`, 'or [IP]::PORT for any free host port');
    }
    ipText = rest.slice(1, close);
    if (ipText === '') throw invalid(`invalid port spec "${spec}": empty host IP`);
    hostText = parts[1] ?? '';
    containerText = parts[2] ?? '';
  } else {
    const parts = rest.split(':');
    containerText = parts.pop() ?? '';
    hostText = parts.pop() ?? '';
    ipText = parts.join(':');
    if (parts.length === 0 && hostText !== '' && parseIp(hostText)) {
      throw invalid(`invalid port spec "${spec}": "${hostText}" is an IP address, not a host port`, `for any free host port on it, write ${hostText}::${containerText}`);
    }
  }
  if (containerText === '') throw invalid(`invalid port spec "${spec}": the container port is missing`);
  const hostIp = ipText === '' ? null : parseHostIp(ipText, spec);
  const [cStart, cEnd] = parseRange(containerText, 'container port', spec);
  const cLen = cEnd - cStart + 1;
  const host = hostText === '' ? null : parseRange(hostText, 'host port', spec);
  const req = (containerPort: number, hostPort: number | null, hostPortEnd: number | null): PortRequest => ({
    spec,
    proto,
    hostIp,
    hostPort,
    hostPortEnd,
    containerPort,
  });
  const out: PortRequest[] = [];
  if (host === null) {
    for (let c = cStart; c <= cEnd; c++) out.push(req(c, null, null));
    return out;
  }
  const [hStart, hEnd] = host;
  const hLen = hEnd - hStart + 1;
  if (cLen === 1) return [req(cStart, hStart, hEnd)]; // one port, or the first free one of a host range
  if (hLen !== cLen) {
    throw invalid(
      `invalid port spec "${spec}": the host range has ${hLen} port${hLen > 1 ? 's' : ''} and the container range ${cLen}`,
      'ranges map one to one and must have the same length; a host range with one container port takes the first free host port',
    );
  }
  for (let i = 0; i < cLen; i++) out.push(req(cStart + i, hStart + i, hStart + i));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Listening sockets, from /proc/net/{tcp,tcp6,udp,udp6} of brnet's own network namespace.

export interface Listener {
  proto: 'tcp' | 'udp';
  ip: string;
  port: number;
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07'; // a bound, unconnected UDP socket: what `ss -lu` lists

/** One 32-bit word of a /proc/net address: printed in host byte order. */
function word(hex: string, littleEndian: boolean): bigint {
  const v = BigInt(`0x${hex}`);
  if (!littleEndian) return v;
  return ((v & 0xffn) << 24n) | ((v & 0xff00n) << 8n) | ((v >> 8n) & 0xff00n) | ((v >> 24n) & 0xffn);
}

function procAddress(hex: string, littleEndian: boolean): string | null {
  if (hex.length === 8) return formatIp({ family: 4, value: word(hex, littleEndian) });
  if (hex.length !== 32) return null;
  let v = 0n;
  for (let i = 0; i < 32; i += 8) v = (v << 32n) | word(hex.slice(i, i + 8), littleEndian);
  // A v4-mapped address on a v6 socket is the IPv4 address.
  if (v >> 32n === 0xffffn) return formatIp({ family: 4, value: v & 0xffffffffn });
  return formatIp({ family: 6, value: v });
}

/** Listening sockets in the text of /proc/net/tcp|tcp6|udp|udp6. */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', littleEndian = endianness() === 'LE'): Listener[] {
  const state = proto === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED;
  const out: Listener[] = [];
  for (const line of text.split('\n')) {
    // "  0: 0100007F:0CEA 00000000:0000 0A ..."
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+:$/.test(f[0] ?? '') || f[3] !== state) continue;
    const [addrHex = '', portHex = ''] = (f[1] ?? '').split(':');
    const ip = procAddress(addrHex, littleEndian);
    const port = Number.parseInt(portHex, 16);
    if (ip && port > 0) out.push({ proto, ip, port });
  }
  return out;
}

let listenerCache: Listener[] | null = null;
let listenerPrefetch: Promise<void> | null = null;

/**
 * Starts reading the listeners in the background (libuv's threads, the four files at once)
 * so that the reads overlap the lock and the state read; readListeners then waits for none.
 * /proc/net/tcp and tcp6 are slow to read even on an idle host (the kernel walks its whole
 * connection hash table), so overlapping them is felt in every publishing call.
 */
export function prefetchListeners(): Promise<void> {
  listenerPrefetch ??= Promise.all(
    LISTENER_FILES.map(
      ([file, proto]) =>
        new Promise<Listener[]>((resolve) => readFile(`/proc/net/${file}`, 'utf8', (err, text) => resolve(err ? [] : parseProcNet(text, proto)))),
    ),
  ).then((lists) => {
    listenerCache ??= lists.flat();
  });
  return listenerPrefetch;
}

/**
 * The host's listening TCP sockets and bound UDP sockets (no process: /proc/net). Read once
 * per invocation: /proc/net/tcp walks the kernel's whole socket table (milliseconds on a busy
 * host), and a `brnet batch` publishing a hundred ports would otherwise read it a hundred times.
 */
export function readListeners(): Listener[] {
  listenerCache ??= readListenersNow();
  return listenerCache;
}

const LISTENER_FILES = [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const;

function readListenersNow(): Listener[] {
  const out: Listener[] = [];
  for (const [file, proto] of LISTENER_FILES) {
    let text: string;
    try {
      text = readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      continue; // IPv6 disabled in this kernel
    }
    out.push(...parseProcNet(text, proto));
  }
  return out;
}

/**
 * Would a socket listening on `l` clash with a binding on hostIp? Same-family overlap as for
 * bindings; and a socket on [::] may be dual-stack (IPV6_V6ONLY is not in /proc/net), so it
 * is taken to hold the port on every IPv4 address too, as bind(2) would.
 */
export function listenerBlocks(l: Listener, hostIp: string): boolean {
  return l.ip === '::' || hostIpsOverlap(l.ip, hostIp);
}

// ---------------------------------------------------------------------------------------------
// The ephemeral range.

export interface EphemeralRange {
  start: number;
  end: number;
  reserved: ReadonlySet<number>;
}

/** Used when /proc/sys/net/ipv4/ip_local_port_range cannot be read (the reference driver's). */
export const FALLBACK_RANGE = { start: 49153, end: 65535 } as const;

/** "32768\t60999" → {start, end}; null when malformed. */
export function parseLocalPortRange(text: string): { start: number; end: number } | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (start < 1 || end > 65535 || end < start) return null;
  return { start, end };
}

/** ip_local_reserved_ports: "" or "8080,9000-9010". */
export function parseReservedPorts(text: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let p = a; p <= Math.min(b, 65535); p++) out.add(p);
  }
  return out;
}

const readProc = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return null;
  }
};

export function readEphemeralRange(): EphemeralRange {
  const range = parseLocalPortRange(readProc('/proc/sys/net/ipv4/ip_local_port_range') ?? '') ?? FALLBACK_RANGE;
  const reserved = parseReservedPorts(readProc('/proc/sys/net/ipv4/ip_local_reserved_ports') ?? '');
  return { ...range, reserved };
}

/** The ports automatic allocation may hand out, lowest first: the range minus the reserved. */
export function* ephemeralPorts(r: EphemeralRange): Generator<number> {
  for (let p = r.start; p <= r.end; p++) if (!r.reserved.has(p)) yield p;
}
