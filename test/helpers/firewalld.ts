/**
 * firewalld inside a test sandbox: a system bus and a firewalld of the sandbox's own, on a
 * private /run (so its bus socket and /run/firewalld exist only there), with tmpfs copies of
 * /etc/firewalld and /var/log. Both are background processes of the sandbox: destroy() ends
 * them. Call it right after Sandbox.create(), before any namespace is added (the new /run
 * gets a new, empty /run/netns).
 */
import { existsSync } from 'node:fs';
import type { BackgroundProcess, Sandbox } from './sandbox.ts';

/** firewalld and dbus-daemon are installed (CI installs them; elsewhere the tests are skipped). */
export const haveFirewalld = existsSync('/usr/sbin/firewalld') && existsSync('/usr/bin/dbus-daemon') && existsSync('/usr/bin/busctl');

export class Firewalld {
  private daemon: BackgroundProcess | null = null;
  private constructor(private readonly sb: Sandbox) {}

  static async start(sb: Sandbox): Promise<Firewalld> {
    const setup = await sb.sh(
      'set -e; mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/dbus && mount -t tmpfs tmpfs /run/netns && ' +
        'T=$(mktemp -d) && cp -a /etc/firewalld/. $T/ && mount -t tmpfs tmpfs /etc/firewalld && cp -a $T/. /etc/firewalld/ && rm -rf $T && ' +
        'mount -t tmpfs tmpfs /var/log',
    );
    if (setup.code !== 0) throw new Error(`firewalld sandbox setup failed: ${setup.stderr}`);
    sb.spawnBackground(['dbus-daemon', '--system', '--nofork', '--nopidfile']);
    if (!(await waitFor(() => sb.sh('test -S /run/dbus/system_bus_socket').then((r) => r.code === 0), 5_000))) {
      throw new Error('dbus-daemon did not start');
    }
    const fw = new Firewalld(sb);
    await fw.startDaemon();
    return fw;
  }

  /** Starts firewalld and waits until it answers RUNNING. */
  async startDaemon(): Promise<void> {
    this.daemon = this.sb.spawnBackground(['firewalld', '--nofork', '--nopid']);
    if (!(await waitFor(() => this.running(), 20_000))) throw new Error(`firewalld did not start: ${this.daemon.stderr()}`);
  }

  /** Stops firewalld (SIGTERM: its own clean-up runs) and waits until it is gone. */
  async stopDaemon(): Promise<void> {
    // Its own pid (nsenter execs it): never a pattern, which would match other sandboxes' firewalld.
    if (this.daemon && this.daemon.pid > 1) process.kill(this.daemon.pid, 'SIGTERM');
    await waitFor(() => this.running().then((r) => !r), 10_000);
    await this.daemon?.kill();
    this.daemon = null;
  }

  async running(): Promise<boolean> {
    const r = await this.sb.exec(['busctl', '--system', '--auto-start=no', 'get-property', 'org.fedoraproject.FirewallD1', '/org/fedoraproject/FirewallD1', 'org.fedoraproject.FirewallD1', 'state']);
    return r.code === 0 && r.stdout.includes('RUNNING');
  }

  /** `firewall-cmd ARGS`, its trimmed stdout; throws on failure. */
  async cmd(...args: string[]): Promise<string> {
    const r = await this.sb.exec(['firewall-cmd', ...args], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`firewall-cmd ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** firewall-cmd's answer, or null when it fails (a zone that does not exist). */
  async tryCmd(...args: string[]): Promise<string | null> {
    const r = await this.sb.exec(['firewall-cmd', ...args], { timeoutMs: 30_000 });
    return r.code === 0 ? r.stdout.trim() : null;
  }
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
