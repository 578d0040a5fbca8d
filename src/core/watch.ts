// `brnet restore --watch`: restore, then stay and restore again whenever something takes
// brnet's firewall objects away. Two sources of news, each one long-running process:
// - `nft monitor`: every nf_tables change, whoever makes it (iptables-nft, nft, firewalld,
//   ufw, iptables-restore). Only deletions and flushes in the tables brnet writes to count.
// - the system bus (`busctl monitor`), when there is one: firewalld's `Reloaded`, and its name
//   changing owner (a start or a stop). A starting firewalld flushes the tables after it took
//   its name, so a repair waits until it says it is RUNNING.
// News only says "look": the kernel is compared with the state without the lock (as `check`
// does), and only a difference leads to a repair, which is a `restore` under the lock. Another
// brnet call changing its networks makes news too; by the time the lock is free, `restore`
// finds nothing to do, and prints nothing. A repair's own changes make news that finds the
// kernel clean: it ends there, never in a loop.
// A userland proxy's exit makes no news of either kind: the recorded proxies are looked at
// every few seconds (/proc only, the state read again only when its file changed), and each
// one that is gone is news once.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { State } from '../state/schema.ts';
import { readState } from '../state/store.ts';
import { BrnetError } from '../errors.ts';
import { type Follower, follow } from '../net/exec.ts';
import { write } from '../tty.ts';
import type { Ctx } from './context.ts';
import type { Restored } from './restore.ts';

/** Quiet after the last event of a burst, and the longest a burst can put a repair off. */
const SETTLE_MS = 250;
const MAX_DELAY_MS = 1000;
const PROXY_POLL_MS = 2000;

/** The nf_tables events that can take something of brnet's away. */
export function removesFromBrnetTables(line: string): boolean {
  return /^(delete|flush) (rule|chain|table) (ip|ip6) (filter|nat|raw|brnet)\b/.test(line) || /^flush ruleset\b/.test(line);
}

export type BusNews = 'reloaded' | 'started' | 'stopped' | null;

/** A `busctl monitor --json=short` line about firewalld. */
export function busNews(line: string): BusNews {
  let m: { member?: unknown; payload?: { data?: unknown } };
  try {
    m = JSON.parse(line) as typeof m;
  } catch {
    return null;
  }
  if (m?.member === 'Reloaded') return 'reloaded';
  const d = m?.payload?.data;
  if (m?.member === 'NameOwnerChanged' && Array.isArray(d) && d[0] === 'org.fedoraproject.FirewallD1') return d[2] ? 'started' : 'stopped';
  return null;
}

const BUS_MATCHES = [
  "--match=type='signal',interface='org.fedoraproject.FirewallD1',member='Reloaded'",
  "--match=type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.fedoraproject.FirewallD1'",
];

const systemBus = () => existsSync((process.env.DBUS_SYSTEM_BUS_ADDRESS ?? '').replace(/^unix:path=/, '') || '/run/dbus/system_bus_socket');

export async function watch(ctx: Ctx, restoreOnce: (quiet: boolean) => Promise<Restored>): Promise<void> {
  let timer: NodeJS.Timeout | null = null;
  let burstStart = 0;
  let busy = false;
  let again = false;
  let firewalldStarting = false;
  let stopping = false;
  let failures = 0;
  let retry = false;
  const reasons = new Set<string>();
  const followers = new Map<string, Follower>();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));

  let poll: NodeJS.Timeout | null = null;
  const stop = () => {
    stopping = true;
    if (timer) clearTimeout(timer);
    if (poll) clearInterval(poll);
    for (const f of followers.values()) f.stop();
    if (!busy) done();
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, stop);

  const news = (why: string) => {
    if (stopping) return;
    reasons.add(why);
    const now = Date.now();
    if (!timer) burstStart = now;
    else clearTimeout(timer);
    timer = setTimeout(() => void repair(), Math.max(0, Math.min(SETTLE_MS, MAX_DELAY_MS - (now - burstStart))));
  };

  const repair = async () => {
    timer = null;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    const why = [...reasons].slice(0, 3).join(', ') + (reasons.size > 3 ? '…' : '');
    reasons.clear();
    try {
      if (firewalldStarting) firewalldStarting = !(await waitForFirewalld());
      const started = performance.now();
      const { check } = await import('./restore.ts');
      const { drift } = await check(ctx);
      if (drift.some((d) => d.kind !== 'foreign' && d.kind !== 'conflict')) {
        const fixed = (await restoreOnce(true)).drift;
        if (fixed.length) {
          const ms = Math.round(performance.now() - started);
          const what = `${fixed[0]!.kind} ${fixed[0]!.what}${fixed.length > 1 ? `; and ${fixed.length - 1} more` : ''}`;
          write(2, `brnet: repaired ${fixed.length} difference${fixed.length > 1 ? 's' : ''} in ${ms} ms (after ${why}): ${what}\n`);
        }
      }
      failures = 0;
    } catch (e) {
      // firewalld starting or stopping answers half-way for a moment: tried again before it
      // is worth a warning.
      if (!(e instanceof BrnetError && e.code === 'INTERRUPTED')) {
        if (++failures >= 3) ctx.warn(`cannot repair after ${why}: ${e instanceof Error ? e.message : String(e)}`);
        else retry = true;
      }
    } finally {
      busy = false;
    }
    if (retry && !stopping) {
      retry = false;
      setTimeout(() => news(`${why} (again)`), 1000);
    }
    if (stopping) return done();
    if (again) {
      again = false;
      news('changes during the last repair');
    }
  };

  /** A follower that is started again when it ends by itself (dbus restarted, say). */
  const keep = (name: string, argv: string[], onLine: (l: string) => void) => {
    if (stopping) return;
    const f = follow(argv, onLine);
    followers.set(name, f);
    void f.exited.then((code) => {
      if (stopping) return;
      if (code === 127) return ctx.warn(`\`${argv[0]}\` is not installed: not watching ${name}`);
      setTimeout(() => keep(name, argv, onLine), 1000);
    });
  };

  const reportedDead = new Set<string>();
  let seen: { mtimeMs: number; state: State } | null = null;
  const pollProxies = async () => {
    if (stopping || busy) return;
    try {
      const file = join(ctx.stateDir, 'state.json');
      const mtimeMs = statSync(file).mtimeMs;
      if (seen?.mtimeMs !== mtimeMs) seen = { mtimeMs, state: (await readState(ctx.stateDir)).data };
      const { deadProxies } = await import('./proxy-ports.ts');
      for (const d of deadProxies(seen.state)) {
        if (reportedDead.has(d)) continue;
        reportedDead.add(d);
        news(`userland proxy ${d.split('/')[0]} exited`);
      }
    } catch {} // no state file yet, or one being replaced: the next look sees it
  };
  poll = setInterval(() => void pollProxies(), PROXY_POLL_MS);

  // Watching starts first: whatever happens during the first restore is news.
  keep('nf_tables', ['nft', 'monitor'], (l) => removesFromBrnetTables(l) && news(`${l.split(' ').slice(0, 4).join(' ')}`));
  if (systemBus()) {
    keep('firewalld', ['busctl', '--system', '--json=short', 'monitor', ...BUS_MATCHES], (l) => {
      const n = busNews(l);
      if (n === 'started') firewalldStarting = true;
      if (n) news(`firewalld ${n}`);
    });
  }
  try {
    // A first restore that fails ends the watch with its error (a unit then restarts it); one
    // interrupted by SIGTERM or SIGINT ends it as a stop does.
    try {
      await restoreOnce(false);
    } catch (e) {
      if (stopping && e instanceof BrnetError && e.code === 'INTERRUPTED') return;
      throw e;
    }
    if (stopping) return;
    ctx.note('watching for flushes and reloads (SIGTERM or Ctrl-C to stop)…');
    await finished;
  } finally {
    stop();
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.off(sig, stop);
  }
}

/** Until firewalld has finished starting (60 s at most); false when it never did. */
async function waitForFirewalld(): Promise<boolean> {
  const { running } = await import('../firewall/firewalld.ts');
  for (let i = 0; i < 240; i++) {
    if (await running()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
