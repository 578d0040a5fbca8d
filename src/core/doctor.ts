// `brnet doctor`: the host as brnet sees it, as findings with hints. Only reads: sysfs and
// /proc for the kernel (no module is ever loaded), the firewall through firewall/survey.ts and
// the readers `check` uses, the state through the store, drift through core/drift.ts. The
// processes (`iptables -V`, the saves, `nft list tables`, `ip`) run side by side.
import { isInitialUidMap, netAdminProblem } from '../net/rootless.ts';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { BrnetError } from '../errors.ts';
import type { Survey } from '../firewall/survey.ts';
import type { State } from '../state/schema.ts';
import { readState, trustStateDir } from '../state/store.ts';
import type { Ctx } from './context.ts';
import type { Comparison } from './drift.ts';
import { type Host, liveHost } from './host.ts';

export type Severity = 'ok' | 'info' | 'warn' | 'error';

export interface Finding {
  /** Stable, for scripts: "kernel.bridge", "iptables.other-variant", "manager.docker"… */
  id: string;
  /** error: brnet cannot work as it should until it is fixed (doctor exits 1). */
  severity: Severity;
  message: string;
  hint: string | null;
}

export interface Report {
  /** No finding is an error. */
  ok: boolean;
  findings: Finding[];
}

const finding = (id: string, severity: Severity, message: string, hint: string | null = null): Finding => ({ id, severity, message, hint });

export function report(findings: Finding[]): Report {
  return { ok: !findings.some((f) => f.severity === 'error'), findings };
}

/** The text form: one line per finding, its hint indented under it. */
export function renderFindings(findings: readonly Finding[]): string[] {
  const out: string[] = [];
  for (const f of findings) {
    out.push(`${f.severity.padEnd(5)}  ${f.message}`);
    if (f.hint) out.push(`       hint: ${f.hint}`);
  }
  return out;
}

/** The error doctor exits with when something blocks brnet (exit 1). */
export function blockingError(r: Report): BrnetError | null {
  const errors = r.findings.filter((f) => f.severity === 'error');
  if (!errors.length) return null;
  return new BrnetError('ENVIRONMENT', `${errors.length} problem${errors.length > 1 ? 's' : ''} block${errors.length > 1 ? '' : 's'} brnet on this host: ${errors.map((e) => e.message).join('; ')}`, {
    exitCode: 1,
    hint: errors[0]?.hint ?? undefined,
  });
}

// ---------------------------------------------------------------------------------------
// Kernel features

type ModuleState = 'loaded' | 'available' | 'missing' | 'unknown';

/** The kernel's module lists, read once and only when a module is not loaded. */
function moduleLists(): { builtin: Set<string>; modules: Set<string> } | null {
  const dir = `/lib/modules/${release()}`;
  const names = (file: string, builtinList: boolean) => {
    const out = new Set<string>();
    for (const line of readFileSync(`${dir}/${file}`, 'utf8').split('\n')) {
      const path = builtinList ? line : line.split(':')[0];
      const m = /([^/]+)\.ko(?:\.[a-z]+)?$/.exec(path?.trim() ?? '');
      if (m) out.add((m[1] as string).replace(/-/g, '_'));
    }
    return out;
  };
  try {
    return { builtin: existsSync(`${dir}/modules.builtin`) ? names('modules.builtin', true) : new Set(), modules: names('modules.dep', false) };
  } catch {
    return null;
  }
}

/** Modules loaded now (/proc/modules); empty on a kernel without loadable modules. */
function loadedModules(): Set<string> {
  try {
    return new Set(readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean));
  } catch {
    return new Set();
  }
}

/**
 * loaded: in /proc/modules, /sys/module, the built-in list, or `proof` (a file the module
 * makes) exists; available: a module file the kernel can load; missing: neither; unknown: no
 * module lists to tell (a kernel with everything built in, say).
 */
function moduleState(name: string, loaded: () => Set<string>, lists: () => ReturnType<typeof moduleLists>, proof?: string): ModuleState {
  if (existsSync(`/sys/module/${name}`) || loaded().has(name) || (proof && existsSync(proof))) return 'loaded';
  const l = lists();
  if (!l) return 'unknown';
  if (l.builtin.has(name)) return 'loaded';
  return l.modules.has(name) ? 'available' : 'missing';
}

export interface KernelFacts {
  modules: Record<'bridge' | 'veth' | 'br_netfilter' | 'nf_tables' | 'nf_conntrack' | 'sctp', ModuleState>;
  /** /proc/sys/net/bridge exists in this namespace: br_netfilter is there. */
  brNetfilter: boolean;
}

export function readKernelFacts(): KernelFacts {
  let cached: ReturnType<typeof moduleLists> | undefined;
  const lists = () => (cached === undefined ? (cached = moduleLists()) : cached);
  let mods: Set<string> | undefined;
  const loaded = () => (mods ??= loadedModules());
  const m = (name: string, proof?: string) => moduleState(name, loaded, lists, proof);
  return {
    modules: {
      bridge: m('bridge'),
      veth: m('veth'),
      br_netfilter: m('br_netfilter', '/proc/sys/net/bridge'),
      nf_tables: m('nf_tables'),
      nf_conntrack: m('nf_conntrack', '/proc/sys/net/netfilter/nf_conntrack_max'),
      sctp: m('sctp', '/proc/net/sctp'),
    },
    brNetfilter: existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'),
  };
}

/** Findings about kernel features, from what brnet needs with these settings. */
export function kernelFindings(k: KernelFacts, cfg: State['config'], nftNeeded: boolean): Finding[] {
  const out: Finding[] = [];
  const unknown = (what: string) => `${what}: not loaded as a module, and no module list to tell whether it is built in (/lib/modules/${release()})`;
  const dev = (id: 'bridge' | 'veth', what: string) => {
    const s = k.modules[id];
    if (s === 'loaded') out.push(finding(`kernel.${id}`, 'ok', `${what}: loaded`));
    else if (s === 'available') out.push(finding(`kernel.${id}`, 'ok', `${what}: not loaded yet; the kernel loads it on first use`));
    else if (s === 'unknown') out.push(finding(`kernel.${id}`, 'info', unknown(what)));
    else out.push(finding(`kernel.${id}`, 'error', `${what}: this kernel has no ${id} module`, `install the kernel's extra modules (e.g. apt-get install linux-modules-extra-${release()})`));
  };
  dev('bridge', 'bridge devices (bridge)');
  dev('veth', 'veth pairs (veth)');
  const needBrNf = cfg.iptables || cfg.ip6tables;
  if (k.brNetfilter) out.push(finding('kernel.br_netfilter', 'ok', 'br_netfilter: loaded (traffic between endpoints of one bridge is filtered)'));
  else if (!needBrNf) out.push(finding('kernel.br_netfilter', 'info', 'br_netfilter: not loaded (not needed: iptables and ip6tables are off)'));
  else if (k.modules.br_netfilter === 'missing') out.push(finding('kernel.br_netfilter', 'error', 'br_netfilter: this kernel has no br_netfilter module; ICC off and hairpin NAT need it', 'use a kernel with CONFIG_BRIDGE_NETFILTER'));
  else out.push(finding('kernel.br_netfilter', 'error', 'br_netfilter: not loaded; brnet needs it for traffic between endpoints of one bridge (network create fails without it)', 'run: modprobe br_netfilter (and add it to /etc/modules-load.d/ to keep it after a reboot)'));
  const nft = k.modules.nf_tables;
  if (nft === 'loaded') out.push(finding('kernel.nf_tables', 'ok', 'nf_tables: loaded'));
  else if (nft === 'missing') out.push(finding('kernel.nf_tables', nftNeeded ? 'error' : 'info', 'nf_tables: this kernel has no nf_tables module', nftNeeded ? 'use the legacy iptables variant and the iptables backend, or a kernel with nf_tables' : null));
  else if (nft === 'unknown') out.push(finding('kernel.nf_tables', 'info', unknown('nf_tables')));
  else out.push(finding('kernel.nf_tables', 'ok', 'nf_tables: not loaded yet; the kernel loads it on first use'));
  const ct = k.modules.nf_conntrack;
  if (ct === 'loaded') out.push(finding('kernel.conntrack', 'ok', 'conntrack: loaded'));
  else if (ct === 'missing') out.push(finding('kernel.conntrack', 'error', 'conntrack: this kernel has no nf_conntrack module; NAT and published ports need it', 'use a kernel with CONFIG_NF_CONNTRACK'));
  else if (ct === 'unknown') out.push(finding('kernel.conntrack', 'info', unknown('conntrack')));
  else out.push(finding('kernel.conntrack', 'ok', 'conntrack: not loaded yet; brnet\'s first NAT rule loads it'));
  const sctp = k.modules.sctp;
  if (sctp === 'loaded') out.push(finding('kernel.sctp', 'ok', 'sctp: loaded'));
  else if (sctp === 'missing') out.push(finding('kernel.sctp', 'info', 'sctp: this kernel has no sctp module: SCTP ports can be published, but nothing can listen on them'));
  else out.push(finding('kernel.sctp', 'info', `sctp: not loaded${sctp === 'unknown' ? ' (or not in this kernel)' : ''}; only needed by endpoints that serve SCTP`, sctp === 'unknown' ? null : 'run: modprobe sctp (when an endpoint serves SCTP)'));
  return out;
}

// ---------------------------------------------------------------------------------------
// Firewall

export interface FirewallFacts {
  survey: Survey;
  /** The FORWARD policy of the variant in use, per family; null when unreadable. */
  forward: { 4: string | null; 6: string | null };
  nftInstalled: boolean;
}

const otherName = (v: 'nft' | 'legacy', f: 4 | 6) => `${f === 4 ? 'iptables' : 'ip6tables'}-${v}`;

export function firewallFindings(fw: FirewallFacts, cfg: State['config']): Finding[] {
  const out: Finding[] = [];
  const { inUse } = fw.survey;
  const backend = cfg.firewallBackend;
  if (inUse) out.push(finding('iptables.variant', 'ok', `iptables: v${inUse.version}, the ${inUse.variant === 'nft' ? 'nf_tables' : 'legacy'} variant`));
  else out.push(finding('iptables.variant', backend === 'iptables' && (cfg.iptables || cfg.ip6tables) ? 'error' : 'info', 'iptables: not installed', 'install it: apt-get install iptables'));
  if (backend === 'nftables' && !fw.nftInstalled) out.push(finding('firewall.backend', 'error', 'firewall backend: nftables, but `nft` is not installed', 'install it: apt-get install nftables'));
  else if (!cfg.iptables && !cfg.ip6tables && backend === 'iptables') out.push(finding('firewall.backend', 'info', 'firewall backend: iptables, turned off (config iptables and ip6tables false): brnet writes no rules'));
  else out.push(finding('firewall.backend', 'ok', `firewall backend: ${backend}${backend === 'iptables' && inUse ? ` (iptables-${inUse.variant})` : ''}`));

  // The other variant: the same packets pass its hooks too, unseen by the variant in use.
  const otherVariant = inUse?.variant === 'legacy' ? 'nft' : 'legacy';
  let otherClean = true;
  for (const { variant, family, summary } of fw.survey.other) {
    const tool = otherName(variant, family);
    const forward = summary.policies.filter((p) => p.table === 'filter' && p.chain === 'FORWARD');
    for (const p of forward) {
      otherClean = false;
      out.push(
        finding(
          'iptables.other-variant',
          'error',
          `${tool}: IPv${family} filter/FORWARD policy ${p.policy}: it drops forwarded traffic that brnet's rules accept (brnet writes to ${backend === 'nftables' ? 'nftables' : `iptables-${inUse?.variant ?? 'nft'}`} only)`,
          `if nothing uses ${tool} any more: ${tool} -P FORWARD ACCEPT; otherwise move its rules to the variant in use`,
        ),
      );
    }
    for (const p of summary.policies.filter((x) => !forward.includes(x))) {
      otherClean = false;
      out.push(finding('iptables.other-variant', 'warn', `${tool}: IPv${family} ${p.table}/${p.chain} policy ${p.policy}`, `${tool} filters the same packets as the variant in use: ${tool} -t ${p.table} -P ${p.chain} ACCEPT if nothing needs it`));
    }
    const total = [...summary.rules.values()].reduce((a, b) => a + b, 0);
    if (total) {
      otherClean = false;
      const where = [...summary.rules.keys()].slice(0, 4).join(', ');
      out.push(finding('iptables.other-variant', 'warn', `${tool}: ${total} IPv${family} rule${total > 1 ? 's' : ''} (${where}${summary.rules.size > 4 ? ', …' : ''}), unseen by the variant in use`, `rules of both variants filter the same packets: see them with ${tool}-save, and keep one variant`));
    }
  }
  if (otherClean) out.push(finding('iptables.other-variant', 'ok', `iptables-${otherVariant}: no rules and no DROP policies${fw.survey.other.length ? '' : ' (not in use)'}`));

  for (const f of [4, 6] as const) {
    const p = fw.forward[f];
    if (p === null || p === 'ACCEPT') continue;
    const how =
      backend === 'nftables'
        ? "brnet adds its two tagged accepts for its bridges there (device group 0x2bad)"
        : "brnet's jump to BRNET-FORWARD accepts its bridges' traffic before the policy applies";
    out.push(finding(`policy.forward.ipv${f}`, 'info', `IPv${f} filter/FORWARD policy ${p} (${inUse ? `iptables-${inUse.variant}` : 'iptables'}): handled, ${how}`));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Other managers

interface Manager {
  id: string;
  name: string;
  chains: RegExp;
  nft: RegExp;
  links: string[];
  paths: string[];
  procs: string[];
  /** What it means for brnet, and what to do about it. */
  means: string;
  hint: string;
}

const MANAGERS: Manager[] = [
  {
    id: 'docker',
    name: 'Docker',
    chains: /^DOCKER/,
    nft: /^\S+ docker/,
    links: ['docker0'],
    paths: ['/run/docker.sock'],
    procs: ['dockerd'],
    means: "it sets the FORWARD policy to DROP and keeps to its own chains; brnet's rules accept brnet's bridges",
    hint: "keep brnet's subnets out of Docker's address pools (brnet refuses a subnet on one of Docker's bridges)",
  },
  {
    id: 'podman',
    name: 'Podman/netavark',
    chains: /^(NETAVARK|CNI-|PODMAN)/,
    nft: /^\S+ netavark/,
    links: ['podman0', 'cni-podman0'],
    paths: ['/run/podman/podman.sock', '/usr/libexec/podman/netavark'],
    procs: ['netavark', 'aardvark-dns', 'podman'],
    means: 'netavark keeps to its own chains or its own nftables table',
    hint: "keep brnet's subnets apart from Podman's networks",
  },
  {
    id: 'libvirt',
    name: 'libvirt',
    chains: /^LIBVIRT_/,
    nft: /^\S+ libvirt/,
    links: ['virbr0'],
    paths: ['/run/libvirt/libvirt-sock', '/run/libvirt/virtnetworkd-sock'],
    procs: ['libvirtd', 'virtnetworkd'],
    means: 'it puts its rules first in the built-in chains whenever a network of its starts',
    hint: 'run brnet check after libvirt starts a network',
  },
  {
    id: 'lxd',
    name: 'LXD/Incus',
    chains: /^(lxd|incus)/,
    nft: /^\S+ (lxd|incus)$/,
    links: ['lxdbr0', 'incusbr0'],
    paths: ['/var/snap/lxd/common/lxd/unix.socket', '/var/lib/lxd/unix.socket', '/var/lib/incus/unix.socket'],
    procs: ['lxd', 'incusd'],
    means: 'its table filters its own bridges only',
    hint: "keep brnet's subnets apart from its bridges'",
  },
  {
    id: 'firewalld',
    name: 'firewalld',
    chains: /^(FWD_|IN_|FWDI_|FWDO_)/,
    nft: /^inet firewalld$/,
    links: [],
    paths: ['/run/firewalld'],
    procs: ['firewalld'],
    means: "its forward chain rejects what no zone allows (brnet binds its bridges to zone brnet, with policy brnet-forwarding), and its start, reload and stop flush every iptables table",
    hint: 'run brnet restore --watch (contrib/brnet-restore.service) to put brnet\'s rules back after each reload',
  },
  {
    id: 'ufw',
    name: 'ufw',
    chains: /^ufw6?-/,
    nft: /^$/,
    links: [],
    paths: [],
    procs: [],
    means: "its default forward policy is DROP; brnet's own FORWARD rules accept its bridges' traffic",
    hint: 'run brnet restore after ufw reload, which rewrites the built-in chains',
  },
];

export interface ManagerEvidence {
  /** Chain names of every table and variant ("DOCKER-USER"), nftables tables ("inet firewalld"). */
  chains: ReadonlySet<string>;
  nftTables: readonly string[];
  links: ReadonlySet<string>;
  exists(path: string): boolean;
  procs: ReadonlySet<string>;
  ufwEnabled: boolean;
}

export function managerFindings(e: ManagerEvidence): Finding[] {
  const out: Finding[] = [];
  for (const m of MANAGERS) {
    // In this namespace's firewall or devices: it acts on the same packets.
    const here = [
      ...[...e.chains].filter((c) => m.chains.test(c)).slice(0, 2).map((c) => `chain ${c}`),
      ...e.nftTables.filter((t) => m.nft.test(t)).map((t) => `table ${t}`),
      ...m.links.filter((l) => e.links.has(l)).map((l) => `bridge ${l}`),
    ];
    const elsewhere = [...m.paths.filter((p) => e.exists(p)), ...m.procs.filter((p) => e.procs.has(p)).map((p) => `process ${p}`)];
    if (m.id === 'ufw' && e.ufwEnabled) elsewhere.push('/etc/ufw/ufw.conf ENABLED=yes');
    if (!here.length && !elsewhere.length) continue;
    const seen = [...here, ...elsewhere].join(', ');
    out.push(finding(`manager.${m.id}`, here.length ? 'warn' : 'info', `${m.name} is present (${seen}): ${m.means}`, m.hint));
  }
  if (!out.length) out.push(finding('managers', 'ok', 'no other network manager found (Docker, Podman, libvirt, LXD/Incus, firewalld, ufw)'));
  return out;
}

function processNames(): Set<string> {
  const out = new Set<string>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {}
  for (const p of pids) {
    try {
      out.add(readFileSync(`/proc/${p}/comm`, 'utf8').trim());
    } catch {} // gone meanwhile
  }
  return out;
}

function ufwEnabled(): boolean {
  try {
    return /^\s*ENABLED\s*=\s*yes/m.test(readFileSync('/etc/ufw/ufw.conf', 'utf8'));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Who runs brnet, and its state

export function userFindings(uid: number, uidMap: string | null): Finding[] {
  const initial = uidMap === null || isInitialUidMap(uidMap);
  if (uid === 0 && initial) return [finding('rootless', 'ok', 'running as root in the initial user namespace (not rootless)')];
  if (uid === 0) return [finding('rootless', 'info', 'rootless: root inside a user namespace; sysctls that are not per network namespace are left alone')];
  return [finding('rootless', 'error', `running as uid ${uid}: brnet changes the network and needs root, or CAP_NET_ADMIN in a user and network namespace of its own`, 'run it as root, or inside: unshare -rn')];
}

function stateDirFinding(dir: string): Finding {
  try {
    trustStateDir(dir);
  } catch (e) {
    const err = e instanceof BrnetError ? e : null;
    return finding('state-dir', 'error', `state dir ${dir}: ${err ? err.message : String(e)}`, err?.hint ?? null);
  }
  try {
    const st = statSync(dir);
    return finding('state-dir', 'ok', `state dir ${dir}: owner uid ${st.uid}, mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}`);
  } catch {
    return finding('state-dir', 'info', `state dir ${dir}: does not exist yet (brnet creates it, mode 0700, with its first change)`);
  }
}

/** With the userland proxy on: how many there are (each one is a process, about 5 MiB of its own). */
export function proxyFindings(state: State, notRunning: number): Finding[] {
  if (!state.config.userlandProxy) return [];
  const n = state.networks.reduce((a, net) => a + net.endpoints.reduce((b, e) => b + e.ports.filter((p) => p.proxy).length, 0), 0);
  return [finding('proxy', 'info', `userland-proxy is on: ${n} proxy process${n === 1 ? '' : 'es'} recorded (about 5 MiB each)${notRunning ? `, ${notRunning} difference${notRunning > 1 ? 's' : ''} (see drift)` : ''}`, 'large published ranges cost a process per port and address family; `brnet config set userland-proxy false` publishes with kernel NAT only')];
}

export function driftFindings(cmp: Pick<Comparison, 'drift' | 'stale' | 'foreign'>, networks: number): Finding[] {
  const out: Finding[] = [];
  if (cmp.foreign.length) {
    out.push(
      finding(
        'drift.foreign',
        'error',
        `another brnet instance owns objects in this namespace (${cmp.foreign.slice(0, 3).map((f) => f.what).join(', ')}): brnet refuses to change anything while they are there`,
        'one state dir per host: use that instance\'s --state-dir, or remove its networks with it first',
      ),
    );
  }
  const own = cmp.drift.filter((d) => d.kind !== 'foreign');
  if (!own.length) out.push(finding('drift', 'ok', `the kernel matches the state (${networks} network${networks === 1 ? '' : 's'})`));
  else {
    const first = own.slice(0, 3).map((d) => `${d.kind}: ${d.what}`).join('; ');
    out.push(finding('drift', 'warn', `the kernel differs from the state in ${own.length} place${own.length > 1 ? 's' : ''} (${first}${own.length > 3 ? '; …' : ''})`, 'see them all with: brnet check; repair with: brnet restore'));
  }
  if (cmp.stale.length) out.push(finding('drift.stale', 'info', `${cmp.stale.length} stale endpoint${cmp.stale.length > 1 ? 's' : ''} (namespace gone): ${cmp.stale.slice(0, 3).map((s) => `${s.network}/${s.endpoint}`).join(', ')}`, 'remove them with: brnet endpoint rm NETWORK ENDPOINT'));
  return out;
}

// ---------------------------------------------------------------------------------------

export async function diagnose(ctx: Ctx): Promise<Report> {
  const { surveyFirewall, onPath } = await import('../firewall/survey.ts');
  const kernel = readKernelFacts();
  // `nft list tables` would load nf_tables where it is a module not loaded yet.
  const survey = surveyFirewall({ nftLoaded: kernel.modules.nf_tables === 'loaded' || kernel.modules.nf_tables === 'unknown' });
  const findings: Finding[] = [];
  const uid = process.geteuid?.() ?? 0;
  let uidMap: string | null = null;
  try {
    uidMap = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {}
  const dirFinding = stateDirFinding(ctx.stateDir);
  let state: State | null = null;
  let stateFinding: Finding | null = null;
  if (dirFinding.severity !== 'error') {
    try {
      state = (await readState(ctx.stateDir)).data;
    } catch (e) {
      const err = e instanceof BrnetError ? e : null;
      stateFinding = finding('state', 'error', err ? err.message : String(e), err?.hint ?? null);
    }
  }
  const host: Host = liveHost(ctx.stateDir);
  const cfg = state?.config ?? (await import('../state/schema.ts')).emptyState().config;
  // check's comparison, on the host view whose firewall reads doctor shares.
  const drift: Promise<Finding[]> = state
    ? import('./drift.ts').then(
        (m) =>
          Promise.all([m.compare(state, host), import('./proxy-ports.ts')]).then(([c, px]) => {
            const proxies = px.proxyDrift(state).drift;
            return [...proxyFindings(state, proxies.length), ...driftFindings({ ...c, drift: [...c.drift, ...proxies] }, state.networks.length)];
          }),
        () => [],
      ).catch((e: unknown) => [finding('drift', 'warn', `cannot compare the kernel with the state: ${e instanceof Error ? e.message : String(e)}`, null)])
    : Promise.resolve([]);
  const forward = (f: 4 | 6) => host.firewall(f).then((k) => k.forwardPolicy, () => null);
  const [sv, fwd4, fwd6] = await Promise.all([survey, forward(4), forward(6)]);
  const nftInstalled = onPath('nft');
  // nf_tables built in shows nowhere but in what works: `nft`, or iptables-nft reading its tables.
  if (kernel.modules.nf_tables === 'unknown' && (sv.nftTables !== null || (sv.inUse?.variant === 'nft' && (fwd4 !== null || fwd6 !== null)))) kernel.modules.nf_tables = 'loaded';
  findings.push(...kernelFindings(kernel, cfg, cfg.firewallBackend === 'nftables' || sv.inUse?.variant === 'nft'));
  findings.push(...firewallFindings({ survey: sv, forward: { 4: fwd4, 6: fwd6 }, nftInstalled }, cfg));
  const chains = new Set<string>();
  for (const f of [4, 6] as const) {
    const k = await host.firewall(f).catch(() => null);
    for (const set of Object.values(k?.allChains ?? {})) for (const c of set) chains.add(c);
  }
  for (const o of sv.other) for (const c of o.summary.chains) chains.add(c.split('/')[1] ?? '');
  findings.push(
    ...managerFindings({
      chains,
      nftTables: sv.nftTables ?? [],
      links: new Set(host.linkNames()),
      exists: existsSync,
      procs: processNames(),
      ufwEnabled: ufwEnabled(),
    }),
  );
  // What the call itself can do: the capability check every change makes (net/rootless.ts).
  const capProblem = netAdminProblem();
  findings.push(...(capProblem ? [finding('rootless', 'error', `brnet cannot change the network here: ${capProblem.message}`, capProblem.hint)] : userFindings(uid, uidMap)), dirFinding);
  if (!capProblem && process.env.ROOTLESSKIT_STATE_DIR) findings.push(finding('rootlesskit', 'info', `inside rootlesskit (${process.env.ROOTLESSKIT_STATE_DIR}): published ports are also exposed on the real host through its port API`));
  if (stateFinding) findings.push(stateFinding);
  findings.push(...(await drift));
  return report(findings);
}
