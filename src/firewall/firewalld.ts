// firewalld's side of a brnet host. firewalld's own nftables table ends its forward chain
// with a reject that an accept in brnet's chains cannot overrule (an accept is final only
// within its table), so every brnet bridge goes into a zone `brnet` (target ACCEPT: what comes
// from a bridge) and a policy `brnet-forwarding` (ANY → brnet, ACCEPT: what goes to one).
//
// Spoken over D-Bus with busctl, one short process per call (10-25 ms; firewall-cmd takes
// 200-450 ms), typed JSON out (`--json=short`), and `--auto-start=no` everywhere: asking an
// installed but stopped firewalld must never start it. Nothing is asked at all unless
// /run/firewalld exists (firewalld makes it at start): hosts without firewalld spawn nothing.
//
// Zone and policy live in the permanent configuration (they must outlive firewalld's reloads
// and restarts, and a new zone reaches the runtime only through a reload); bridges are bound
// in both, so a reload keeps them bound. A zone or policy whose description is not brnet's
// was made by someone else: brnet binds its bridges there but never changes or removes it.
import { existsSync } from 'node:fs';
import { BrnetError } from '../errors.ts';
import { run } from '../net/exec.ts';
import type { Step } from '../plan/steps.ts';
import { isIfname } from '../validate/values.ts';
import type { FirewallDrift } from './types.ts';

export const ZONE = 'brnet';
export const POLICY = 'brnet-forwarding';
const MARK = 'Bridges of brnet networks: made by brnet, removed with its last network.';
const BUS = 'org.fedoraproject.FirewallD1';
const ROOT = '/org/fedoraproject/FirewallD1';
const CONFIG = `${ROOT}/config`;

/** What firewalld holds of brnet's, at runtime and in its permanent configuration. */
export interface FirewalldView {
  runtime: { zone: ZoneView | null; policy: boolean };
  permanent: { zone: (ZoneView & { path: string; owned: boolean }) | null; policy: { path: string; owned: boolean } | null };
}

interface ZoneView {
  target: string;
  interfaces: string[];
}

/** One D-Bus call; null when firewalld does not answer (not running), the reply's `data` otherwise. */
async function call(path: string, iface: string, method: string, sig?: string, ...args: string[]): Promise<unknown[] | null> {
  const argv = ['busctl', '--system', '--json=short', '--auto-start=no', 'call', BUS, path, iface, method, ...(sig ? [sig, ...args] : [])];
  const r = await run(argv, { allowFail: true, timeoutMs: 30_000 });
  if (r.code === 0) {
    const parsed = parseReply(r.stdout);
    if (parsed === null) throw new BrnetError('COMMAND_FAILED', `busctl ${method}: unexpected reply from firewalld`);
    return parsed;
  }
  if (absent(r.stderr)) return null;
  throw new FirewalldError(method, r.stderr);
}

/** A call firewalld refused: its error name (ALREADY_ENABLED, INVALID_ZONE…) tells why. */
export class FirewalldError extends BrnetError {
  readonly reason: string;
  constructor(method: string, stderr: string) {
    const line = stderr.trim().split('\n').find((l) => l.startsWith('Call failed:')) ?? stderr.trim().split('\n')[0] ?? '';
    const reason = /^Call failed: ([A-Z_]+):/.exec(line)?.[1] ?? '';
    super('COMMAND_FAILED', `firewalld ${method}: ${line.replace(/^Call failed: /, '').slice(0, 200) || 'failed'}`);
    this.reason = reason;
  }
}

/** No bus, or no firewalld on it. */
const absent = (stderr: string) =>
  /ServiceUnknown|NameHasNoOwner|was not provided by any \.service|not activatable|Failed to connect to bus|No such file or directory|Connection refused|does not exist|disconnected from message bus/.test(stderr);

/** busctl's `{"type":…,"data":[…]}` ([] for a method that returns nothing); null when it is not that shape. */
export function parseReply(text: string): unknown[] | null {
  if (text.trim() === '') return [];
  try {
    const v = JSON.parse(text) as { data?: unknown };
    return Array.isArray(v?.data) ? v.data : null;
  } catch {
    return null;
  }
}

/** A variant's value in an `a{sv}` reply, when it has the given D-Bus type. */
function field(dict: unknown, key: string, type: string): unknown {
  if (typeof dict !== 'object' || dict === null) return undefined;
  const v = (dict as Record<string, { type?: unknown; data?: unknown }>)[key];
  return v && v.type === type ? v.data : undefined;
}

/** A zone's settings as firewalld sends them, kept only where they are what they should be. */
export function zoneOf(settings: unknown): ZoneView {
  const names = field(settings, 'interfaces', 'as');
  return {
    target: String(field(settings, 'target', 's') ?? ''),
    // Names that are not interface names cannot be brnet's bridges: never acted upon.
    interfaces: Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string' && isIfname(n)) : [],
  };
}

const owned = (settings: unknown) => field(settings, 'description', 's') === MARK;
const objectPath = (data: unknown[] | null) => (typeof data?.[0] === 'string' && /^\/org\/fedoraproject\/FirewallD1\/config\/[a-z]+\/\d+$/.test(data[0]) ? data[0] : null);

/** Absent names and zones read as null; anything else firewalld refuses is an error. */
async function orNull<T>(p: Promise<T>, ...reasons: string[]): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof FirewalldError && reasons.includes(e.reason)) return null;
    throw e;
  }
}

/** firewalld as it is now; null when it does not run. Four calls side by side, then one or two. */
export async function readFirewalld(): Promise<FirewalldView | null> {
  if (!existsSync('/run/firewalld')) return null;
  const [up, rz, rp, pz, pp] = await Promise.all([
    running(),
    orNull(call(ROOT, `${BUS}.zone`, 'getZoneSettings2', 's', ZONE), 'INVALID_ZONE'),
    orNull(call(ROOT, `${BUS}.policy`, 'getPolicySettings', 's', POLICY), 'INVALID_POLICY'),
    orNull(call(CONFIG, `${BUS}.config`, 'getZoneByName', 's', ZONE), 'INVALID_ZONE'),
    orNull(call(CONFIG, `${BUS}.config`, 'getPolicyByName', 's', POLICY), 'INVALID_POLICY'),
  ]);
  // Not running, or starting or stopping: what it says then is not its configuration. Its
  // start is followed by a repair (`restore --watch`), and `check` tells in the meantime.
  if (!up) return null;
  const zonePath = objectPath(pz);
  const policyPath = objectPath(pp);
  const [zs, ps] = await Promise.all([
    zonePath ? call(zonePath, `${BUS}.config.zone`, 'getSettings2') : null,
    policyPath ? call(policyPath, `${BUS}.config.policy`, 'getSettings') : null,
  ]);
  return {
    runtime: { zone: rz ? zoneOf(rz[0]) : null, policy: rp !== null },
    permanent: {
      zone: zonePath && zs ? { ...zoneOf(zs[0]), path: zonePath, owned: owned(zs[0]) } : null,
      policy: policyPath && ps ? { path: policyPath, owned: owned(ps[0]) } : null,
    },
  };
}

/** firewalld answers and has finished starting (its `state` is RUNNING). */
export async function running(): Promise<boolean> {
  const r = await run(['busctl', '--system', '--json=short', '--auto-start=no', 'get-property', BUS, ROOT, BUS, 'state'], { allowFail: true, timeoutMs: 10_000 }).catch(() => null);
  if (!r || r.code !== 0) return false;
  try {
    return (JSON.parse(r.stdout) as { data?: unknown }).data === 'RUNNING';
  } catch {
    return false;
  }
}

/** What `check` reports: the bridges of the state that firewalld does not let through. */
export function firewalldDrift(view: FirewalldView | null, bridges: string[]): FirewallDrift[] {
  if (!view) return [];
  const drift: FirewallDrift[] = [];
  if (!bridges.length) {
    if (view.permanent.zone?.owned && !view.permanent.zone.interfaces.length) drift.push({ kind: 'leftover', what: `firewalld zone ${ZONE}` });
    if (view.permanent.policy?.owned && view.permanent.zone?.owned && !view.permanent.zone.interfaces.length) drift.push({ kind: 'leftover', what: `firewalld policy ${POLICY}` });
    return drift;
  }
  const { runtime, permanent } = view;
  if (!runtime.zone) drift.push({ kind: 'missing', what: `firewalld zone ${ZONE}` });
  else if (runtime.zone.target !== 'ACCEPT') drift.push({ kind: 'wrong', what: `firewalld zone ${ZONE}: target ${runtime.zone.target}, not ACCEPT` });
  if (!runtime.policy) drift.push({ kind: 'missing', what: `firewalld policy ${POLICY}` });
  if (!permanent.zone) drift.push({ kind: 'missing', what: `firewalld zone ${ZONE} (permanent configuration)` });
  if (!permanent.policy) drift.push({ kind: 'missing', what: `firewalld policy ${POLICY} (permanent configuration)` });
  for (const b of bridges) {
    if (runtime.zone && !runtime.zone.interfaces.includes(b)) drift.push({ kind: 'missing', what: `bridge ${b} in firewalld zone ${ZONE}` });
    else if (permanent.zone && !permanent.zone.interfaces.includes(b)) drift.push({ kind: 'missing', what: `bridge ${b} in firewalld zone ${ZONE} (permanent configuration)` });
  }
  return drift;
}

/**
 * The step that makes firewalld let `bridges` through and forget `gone`. Zone and policy are
 * made when missing, which needs a reload of firewalld; a reload flushes every iptables table
 * (firewalld 1.3, whatever its own backend), so `afterReload` puts brnet's rules back to what
 * the kernel held before the step. With no bridge left, zone and policy go, if brnet made
 * them and nothing else is bound there. null: nothing to do.
 */
export function firewalldStep(view: FirewalldView | null, bridges: string[], gone: string[], afterReload: () => Promise<void>): { step: Step; reloads: boolean } | null {
  if (!view) return null;
  const { runtime, permanent } = view;
  const remove = gone.filter((b) => !bridges.includes(b) && (runtime.zone?.interfaces.includes(b) || permanent.zone?.interfaces.includes(b)));
  if (bridges.length) {
    const zoneMissing = !permanent.zone;
    const policyMissing = !permanent.policy;
    const reload = zoneMissing || policyMissing || !runtime.zone || !runtime.policy;
    const addRuntime = reload ? [] : bridges.filter((b) => !runtime.zone!.interfaces.includes(b));
    const addPermanent = zoneMissing ? [] : bridges.filter((b) => !permanent.zone!.interfaces.includes(b));
    if (!reload && !addRuntime.length && !addPermanent.length && !remove.length) return null;
    const show = [
      ...(zoneMissing ? [`firewalld: add zone ${ZONE} (target ACCEPT, interfaces ${bridges.join(' ')})`] : []),
      ...(policyMissing ? [`firewalld: add policy ${POLICY} (ingress ANY, egress ${ZONE}, target ACCEPT)`] : []),
      ...addPermanent.map((b) => `firewalld: bind ${b} to zone ${ZONE} (permanent${reload ? '' : ' and runtime'})`),
      ...remove.map((b) => `firewalld: unbind ${b} from zone ${ZONE}`),
      ...(reload ? ['firewalld: reload, then put back brnet\'s rules'] : addRuntime.filter((b) => !addPermanent.includes(b)).map((b) => `firewalld: bind ${b} to zone ${ZONE} (runtime)`)),
    ];
    const made: string[] = [];
    return {
      reloads: reload,
      step: {
        show,
        async do() {
          const zone = zoneMissing ? await addZone(bridges) : null;
          const policy = policyMissing ? await addPolicy() : null;
          made.push(...[zone, policy].filter((p): p is string => p !== null));
          await bindAll(addPermanent, reload ? [] : addRuntime, permanent.zone?.path);
          await unbindAll(remove, permanent.zone?.path);
          if (reload) await reloadThen(afterReload);
        },
        async undo() {
          await unbindAll(reload ? [] : addRuntime.filter((b) => !addPermanent.includes(b)), undefined);
          await unbindAll(addPermanent, permanent.zone?.path);
          for (const p of made.reverse()) await removeObject(p);
          if (made.length) await reloadThen(afterReload);
        },
      },
    };
  }
  const dropZone = permanent.zone?.owned && permanent.zone.interfaces.every((b) => remove.includes(b));
  const dropPolicy = dropZone && permanent.policy?.owned;
  if (!remove.length && !dropZone) return null;
  return {
    reloads: Boolean(dropZone),
    step: {
      show: [
        ...remove.map((b) => `firewalld: unbind ${b} from zone ${ZONE}`),
        ...(dropZone ? [`firewalld: remove zone ${ZONE}`] : []),
        ...(dropPolicy ? [`firewalld: remove policy ${POLICY}`] : []),
        ...(dropZone ? ['firewalld: reload'] : []),
      ],
      async do() {
        if (!dropZone) await unbindAll(remove, permanent.zone?.path);
        if (dropPolicy) await removeObject(permanent.policy!.path, `${BUS}.config.policy`);
        if (dropZone) {
          await removeObject(permanent.zone!.path);
          await reloadThen(afterReload);
        }
      },
    },
  };
}

/** The path of what was made; null when it was there already (made meanwhile: nothing to undo). */
async function addZone(bridges: string[]): Promise<string | null> {
  const data = await orNull(
    call(CONFIG, `${BUS}.config`, 'addZone2', 'sa{sv}', ZONE, '4', 'target', 's', 'ACCEPT', 'short', 's', 'brnet', 'description', 's', MARK, 'interfaces', 'as', String(bridges.length), ...bridges),
    'NAME_CONFLICT',
  );
  return data === null ? null : must(objectPath(data), 'addZone2');
}

async function addPolicy(): Promise<string | null> {
  const data = await orNull(
    call(
      CONFIG, `${BUS}.config`, 'addPolicy', 'sa{sv}', POLICY, '5',
      'target', 's', 'ACCEPT', 'short', 's', 'brnet', 'description', 's', MARK,
      'ingress_zones', 'as', '1', 'ANY', 'egress_zones', 'as', '1', ZONE,
    ),
    'NAME_CONFLICT',
  );
  return data === null ? null : must(objectPath(data), 'addPolicy');
}

function must<T>(v: T | null, what: string): T {
  if (v === null) throw new BrnetError('COMMAND_FAILED', `firewalld ${what}: firewalld does not answer`);
  return v;
}

async function removeObject(path: string, iface = path.includes('/policy/') ? `${BUS}.config.policy` : `${BUS}.config.zone`): Promise<void> {
  await orNull(call(path, iface, 'remove'), 'INVALID_ZONE', 'INVALID_POLICY', 'INVALID_OBJECT');
}

/** Binds at runtime and permanently; one already bound there is fine. */
async function bindAll(permanent: string[], runtime: string[], path: string | undefined): Promise<void> {
  await Promise.all([
    ...runtime.map((b) => orNull(call(ROOT, `${BUS}.zone`, 'addInterface', 'ss', ZONE, b), 'ZONE_ALREADY_SET', 'ALREADY_ENABLED')),
    ...(path ? permanent.map((b) => orNull(call(path, `${BUS}.config.zone`, 'addInterface', 's', b), 'ALREADY_ENABLED')) : []),
  ]);
}

/** Unbinds at runtime and permanently (when `path`); one not bound is fine. */
async function unbindAll(bridges: string[], path: string | undefined): Promise<void> {
  await Promise.all([
    ...bridges.map((b) => orNull(call(ROOT, `${BUS}.zone`, 'removeInterface', 'ss', ZONE, b), 'UNKNOWN_INTERFACE', 'NOT_ENABLED', 'INVALID_ZONE')),
    ...(path ? bridges.map((b) => orNull(call(path, `${BUS}.config.zone`, 'removeInterface', 's', b), 'NOT_ENABLED')) : []),
  ]);
}

/** firewalld's reload returns once it is done; brnet's rules, flushed by it, go back right after. */
async function reloadThen(afterReload: () => Promise<void>): Promise<void> {
  await call(ROOT, BUS, 'reload');
  await afterReload();
}
