// `brnet __proxy MARK PROTO HOST_IP HOST_PORT TO_IP TO_PORT`: the userland proxy, brnet's own
// executable in another role (one program to install, as docker-proxy is not). It holds one
// host port and forwards what arrives there to one endpoint: TCP a connection per client with
// half-close passed on, UDP a flow per client address with an idle timeout.
//
// Its life is tied to the call that starts it (net/proxy.ts), over stdin and stdout:
//   proxy → brnet   "ready\n" once the port is bound, or "error <why>\n" and exit 1;
//   brnet → proxy   "commit\n" once the state that records the proxy is written.
// An end of stdin before "commit" means the call rolled back or died before recording it:
// the proxy exits, so no crash of brnet can leave a proxy that no state knows of. After the
// commit the proxy runs on its own, until SIGTERM or SIGINT.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { writeSync } from 'node:fs';

/** How long a UDP flow lives without a datagram either way (docker-proxy's figure). */
const UDP_IDLE_MS = 90_000;
/** Flows kept at most; the one idle longest makes room for a new one. */
const UDP_MAX_FLOWS = 4096;

export interface ProxySpec {
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  toIp: string;
  toPort: number;
}

/** The role's arguments (after `__proxy`): the mark, then the spec. null when they are not one. */
export function parseProxyArgs(args: readonly string[]): { mark: string; spec: ProxySpec } | null {
  const [mark, proto, hostIp, hostPort, toIp, toPort] = args;
  const port = (s: string | undefined) => (s && /^[1-9]\d{0,4}$/.test(s) && Number(s) < 65536 ? Number(s) : null);
  if (args.length !== 6 || !mark?.startsWith('brnet') || (proto !== 'tcp' && proto !== 'udp')) return null;
  if (!hostIp || !toIp || net.isIP(hostIp) === 0 || net.isIP(toIp) === 0) return null;
  const hp = port(hostPort);
  const tp = port(toPort);
  if (hp === null || tp === null) return null;
  return { mark, spec: { proto, hostIp, hostPort: hp, toIp, toPort: tp } };
}

export const proxyArgs = (mark: string, s: ProxySpec): string[] => [mark, s.proto, s.hostIp, String(s.hostPort), s.toIp, String(s.toPort)];

/** Writes one line to brnet, synchronously: the line must be out before the process may exit. */
function say(line: string): void {
  try {
    writeSync(1, `${line}\n`);
  } catch {} // brnet is gone; stdin's end will say so
}

export function runProxy(args: readonly string[]): void {
  const parsed = parseProxyArgs(args);
  if (!parsed) {
    say('error invalid proxy arguments');
    process.exit(2);
  }
  const { spec } = parsed;
  process.chdir('/');
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {});
  const fail = (e: unknown) => {
    say(`error ${e instanceof Error ? e.message : String(e)}`.replace(/\n/g, ' '));
    process.exit(1);
  };
  const ready = () => {
    say('ready');
    awaitCommit();
  };
  try {
    if (spec.proto === 'tcp') tcpProxy(spec, ready, fail);
    else udpProxy(spec, ready, fail);
  } catch (e) {
    fail(e);
  }
}

function awaitCommit(): void {
  let got = '';
  let committed = false;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    got += chunk;
    if (!committed && got.includes('commit\n')) {
      committed = true;
      process.stdin.destroy();
    }
  });
  process.stdin.on('error', () => {});
  process.stdin.on('end', () => {
    if (!committed) process.exit(0);
  });
  process.stdin.on('close', () => {
    if (!committed) process.exit(0);
  });
}

const v6 = (ip: string) => ip.includes(':');

function tcpProxy(s: ProxySpec, ready: () => void, fail: (e: unknown) => void): void {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: s.toIp, port: s.toPort, allowHalfOpen: true });
    // Each direction's end is passed on as a FIN (pipe's end()), so a client that half-closes
    // still gets the rest of the answer; an error on either side ends both.
    client.pipe(upstream);
    upstream.pipe(client);
    const both = () => {
      client.destroy();
      upstream.destroy();
    };
    // A clean close of one side is not the end of the other: its end() (from pipe) sends the
    // rest of what it holds, then the FIN. Destroying it here would drop that rest.
    client.on('error', both);
    upstream.on('error', both);
    client.on('close', (hadError) => hadError && upstream.destroy());
    upstream.on('close', (hadError) => hadError && client.destroy());
  });
  server.on('error', fail);
  server.listen({ host: s.hostIp, port: s.hostPort, ipv6Only: v6(s.hostIp), exclusive: true, backlog: 511 }, ready);
}

interface Flow {
  up: dgram.Socket;
  last: number;
}

function udpProxy(s: ProxySpec, ready: () => void, fail: (e: unknown) => void): void {
  const sock = dgram.createSocket({ type: v6(s.hostIp) ? 'udp6' : 'udp4', ipv6Only: v6(s.hostIp) });
  const flows = new Map<string, Flow>();
  const close = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    flows.delete(key);
    try {
      f.up.close();
    } catch {}
  };
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, f] of flows) if (now - f.last > UDP_IDLE_MS) close(k);
  }, 5_000);
  sweep.unref();
  sock.on('error', fail);
  sock.on('message', (msg, from) => {
    const key = `${from.address}|${from.port}`;
    let flow = flows.get(key);
    if (!flow) {
      if (flows.size >= UDP_MAX_FLOWS) {
        let oldest: string | null = null;
        let t = Infinity;
        for (const [k, f] of flows) if (f.last < t) [oldest, t] = [k, f.last];
        if (oldest) close(oldest);
      }
      // One socket per client, so that the endpoint's answers come back to the one that asked.
      const up = dgram.createSocket(v6(s.toIp) ? 'udp6' : 'udp4');
      const f: Flow = { up, last: Date.now() };
      up.on('message', (reply, rinfo) => {
        if (rinfo.address !== s.toIp || rinfo.port !== s.toPort) return;
        f.last = Date.now();
        sock.send(reply, from.port, from.address);
      });
      up.on('error', () => close(key));
      flows.set(key, f);
      flow = f;
    }
    flow.last = Date.now();
    flow.up.send(msg, s.toPort, s.toIp);
  });
  sock.bind({ address: s.hostIp, port: s.hostPort, exclusive: true }, ready);
}
