// rootlesskit's port API ($ROOTLESSKIT_STATE_DIR/api.sock): what exposes a published port on
// the real host when brnet runs inside rootlesskit. The parent (on the host) listens on
// parentIP:parentPort and hands each connection to the child (brnet's network namespace),
// which dials childIP:childPort: brnet gives the endpoint's own address and port, so the
// exposure needs none of the DNAT rules and works whatever the loopback settings.
// HTTP over a unix socket with the runtime's own client: no curl.
import { request } from 'node:http';
import { conflict, environment, notFound } from '../errors.ts';

export interface RlkPortSpec {
  proto: string;
  parentIP: string;
  parentPort: number;
  childIP: string;
  childPort: number;
}
export interface RlkPort extends RlkPortSpec {
  id: number;
}

/** The API socket when brnet runs inside rootlesskit; null otherwise. */
export function apiSocket(): string | null {
  const dir = process.env.ROOTLESSKIT_STATE_DIR;
  return dir ? `${dir.replace(/\/+$/, '')}/api.sock` : null;
}

interface Reply {
  status: number;
  body: string;
}

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        path,
        method,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => reject(environment(`rootlesskit's API ${socketPath}: ${e.message}`, 'is rootlesskit still running? (ROOTLESSKIT_STATE_DIR is set)')));
    req.end(payload);
  });
}

/** rootlesskit's error text: {"message": "..."} (or whatever it said). */
const messageOf = (r: Reply) => {
  try {
    const m = (JSON.parse(r.body) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {}
  return r.body.trim() || `HTTP ${r.status}`;
};

const isPort = (p: unknown): p is RlkPort => {
  const o = p as Record<string, unknown>;
  return typeof o?.id === 'number' && typeof o.proto === 'string' && typeof o.parentPort === 'number' && typeof o.childPort === 'number';
};

export async function listPorts(socketPath: string): Promise<RlkPort[]> {
  const r = await call(socketPath, 'GET', '/v1/ports');
  if (r.status !== 200) throw environment(`rootlesskit's API: GET /v1/ports: ${messageOf(r)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.body);
  } catch {
    throw environment("rootlesskit's API: GET /v1/ports: not JSON");
  }
  // Each entry is {id, spec: {...}} in the API, checked like any input before use.
  return (Array.isArray(parsed) ? parsed : []).map((e: any) => ({ id: e?.id, ...(e?.spec ?? {}) })).filter(isPort);
}

export async function addPort(socketPath: string, spec: RlkPortSpec): Promise<number> {
  const r = await call(socketPath, 'POST', '/v1/ports', spec);
  if (r.status === 200 || r.status === 201) {
    try {
      const id = (JSON.parse(r.body) as { id?: unknown }).id;
      if (typeof id === 'number') return id;
    } catch {}
    throw environment("rootlesskit's API: POST /v1/ports answered without an id");
  }
  const why = messageOf(r);
  const where = `${spec.parentIP.includes(':') ? `[${spec.parentIP}]` : spec.parentIP}:${spec.parentPort}/${spec.proto}`;
  if (/permission denied/i.test(why)) {
    throw conflict(
      `cannot expose ${where} on the real host: ${why}`,
      'ports below net.ipv4.ip_unprivileged_port_start of the real host are root\'s: publish a higher host port, or have root lower that sysctl',
    );
  }
  throw conflict(`cannot expose ${where} on the real host: ${why}`, /in use/i.test(why) ? 'another program on the real host holds that port: publish another one' : undefined);
}

export async function removePort(socketPath: string, id: number): Promise<void> {
  const r = await call(socketPath, 'DELETE', `/v1/ports/${id}`);
  if (r.status === 200 || r.status === 204 || r.status === 404) return;
  const why = messageOf(r);
  if (/not found|no such/i.test(why)) return;
  throw notFound(`rootlesskit's API: DELETE /v1/ports/${id}: ${why}`);
}
