/**
 * Real traffic probes between namespaces of a Sandbox, using tiny inline Node
 * scripts (process.execPath) run with `ip netns exec` (or directly in the
 * sandbox for the sandbox host, ns = null).
 */
import { randomBytes } from 'node:crypto';
import { Sandbox, type BackgroundProcess } from './sandbox.ts';

export type Proto = 'tcp' | 'udp';

export interface EchoServer {
  ns: string | null;
  proto: Proto;
  port: number;
  v6: boolean;
  process: BackgroundProcess;
  /** Kills the server and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

export interface ProbeResult {
  /** The reply started with the token we sent. */
  ok: boolean;
  /** Raw reply ('' if none). */
  reply: string;
  /** The client address as the echo server saw it ('' if no reply). */
  peer: string;
  /** Error / timeout description from the probe script, for diagnostics. */
  error?: string;
}

// Echo server: args = proto port v6. For every TCP connection, reads up to the
// first newline (or EOF) and replies "<text>|<peer>"; for every UDP datagram,
// replies "<text>|<peer>" to the sender. Prints READY once listening.
const ECHO_SCRIPT = String.raw`
const net = require('net'), dgram = require('dgram');
const [proto, portS, v6S] = process.argv.slice(1);
const port = Number(portS), v6 = v6S === '1';
const host = v6 ? '::' : '0.0.0.0';
const clean = (a) => String(a || '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
const fail = (e) => { console.error(String(e && e.stack || e)); process.exit(1); };
if (proto === 'tcp') {
  const srv = net.createServer((s) => {
    let buf = '', done = false;
    const reply = () => {
      if (done) return; done = true;
      const nl = buf.indexOf('\n');
      const text = nl >= 0 ? buf.slice(0, nl) : buf;
      s.end(text + '|' + clean(s.remoteAddress));
    };
    s.setEncoding('utf8');
    s.on('data', (d) => { buf += d; if (buf.includes('\n')) reply(); });
    s.on('end', reply);
    s.on('error', () => {});
    s.setTimeout(10000, () => s.destroy());
  });
  srv.on('error', fail);
  srv.listen({ host, port, ipv6Only: false }, () => console.log('READY'));
} else {
  const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: false });
  sock.on('error', fail);
  sock.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8').replace(/\n$/, '');
    sock.send(text + '|' + clean(rinfo.address), rinfo.port, rinfo.address);
  });
  sock.bind(port, host, () => console.log('READY'));
}
`;

// Probe: args = proto host port token timeoutMs. Prints one JSON line
// {reply, error} and always exits 0 within timeoutMs.
const PROBE_SCRIPT = String.raw`
const net = require('net'), dgram = require('dgram');
const [proto, host, portS, token, tS] = process.argv.slice(1);
const port = Number(portS), timeoutMs = Number(tS);
let finished = false;
const finish = (reply, error) => {
  if (finished) return; finished = true;
  process.stdout.write(JSON.stringify({ reply, error }) + '\n', () => process.exit(0));
};
setTimeout(() => finish(reply0(), 'timeout after ' + timeoutMs + ' ms'), timeoutMs);
let buf = '';
const reply0 = () => buf;
if (proto === 'tcp') {
  const s = net.connect({ host, port });
  s.setEncoding('utf8');
  s.on('connect', () => s.write(token + '\n'));
  s.on('data', (d) => { buf += d; });
  s.on('end', () => finish(buf, buf ? undefined : 'connection closed without reply'));
  s.on('error', (e) => finish(buf, e.code || String(e)));
} else {
  const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  s.on('error', (e) => finish('', e.code || String(e)));
  s.on('message', (m) => { buf = m.toString('utf8'); finish(buf); });
  s.send(token, port, host, (e) => { if (e) finish('', e.code || String(e)); });
}
`;

/**
 * Starts an echo server in namespace `ns` (null = sandbox host) listening on
 * all addresses (v6: `::`). Resolves once it is listening (≤ 5 s).
 * sb.destroy() also kills it.
 */
export async function startEcho(
  sb: Sandbox,
  ns: string | null,
  proto: Proto,
  port: number,
  opts: { v6?: boolean } = {},
): Promise<EchoServer> {
  const v6 = !!opts.v6;
  const proc = sb.spawnBackground(
    Sandbox.nsArgv(ns, [process.execPath, '-e', ECHO_SCRIPT, proto, String(port), v6 ? '1' : '0']),
  );
  const server: EchoServer = { ns, proto, port, v6, process: proc, stop: () => proc.kill() };
  const deadline = Date.now() + 5_000;
  let exitCode: number | null = null;
  void proc.exited.then((c) => (exitCode = c));
  const ssArgs = proto === 'tcp' ? '-Hltn' : '-Hlun';
  for (;;) {
    if (exitCode !== null) {
      throw new Error(
        `echo server ${proto}/${port} in ${ns ?? 'sandbox host'} exited with code ${exitCode}: ${proc.stderr()}`,
      );
    }
    if (proc.stdout().includes('READY')) {
      // Double-check with ss that the socket really is there.
      const ss = await sb.exec(Sandbox.nsArgv(ns, ['ss', ssArgs, `sport = :${port}`]), { timeoutMs: 5_000 });
      if (ss.code === 0 && ss.stdout.trim() !== '') return server;
    }
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(
        `echo server ${proto}/${port} in ${ns ?? 'sandbox host'} not listening after 5 s; ` +
          `stdout: ${proc.stdout()} stderr: ${proc.stderr()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends a random token from namespace `fromNs` (null = sandbox host) to
 * host:port (IPv6 without brackets) and waits up to timeoutMs (default 2000)
 * for the echo. Never throws because of the network; never hangs.
 */
export async function probe(
  sb: Sandbox,
  fromNs: string | null,
  proto: Proto,
  host: string,
  port: number,
  opts: { timeoutMs?: number } = {},
): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const token = `tok-${randomBytes(8).toString('hex')}`;
  const res = await sb.exec(
    Sandbox.nsArgv(fromNs, [process.execPath, '-e', PROBE_SCRIPT, proto, host, String(port), token, String(timeoutMs)]),
    // Leave room for node start-up; the script itself bounds the wait.
    { timeoutMs: timeoutMs + 10_000 },
  );
  let reply = '';
  let error: string | undefined;
  try {
    const line = res.stdout.trim().split('\n').pop() ?? '';
    const parsed = JSON.parse(line) as { reply?: string; error?: string };
    reply = parsed.reply ?? '';
    error = parsed.error;
  } catch {
    error = `probe script failed (code ${res.code}): ${res.stderr.trim()}`;
  }
  const ok = reply.startsWith(token);
  const bar = reply.indexOf('|');
  const peer = ok && bar >= 0 ? reply.slice(bar + 1).trim() : '';
  return ok ? { ok, reply, peer } : { ok, reply, peer, error };
}
