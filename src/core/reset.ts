// `brnet reset`: take away everything brnet made, through the same machinery as the rest:
// `network rm --force` for every network (endpoints, the namespaces brnet created, bridges,
// conntrack), the comparison `restore` uses for what the state does not know (devices with
// this instance's mark, namespaces of killed calls) and for the rules of both firewall
// backends, repaired to hold nothing; then the sysctls brnet changed go back to their values
// before it (core/sysctl-record.ts). Only what is provably brnet's is touched; another
// instance's objects stop it before anything changes, as for `restore`.
import { anotherInstance } from '../errors.ts';
import { tolerantBatchStep } from '../net/veth.ts';
import { readSysctl, sysctlRevertStep } from '../net/sysctl.ts';
import type { Step } from '../plan/steps.ts';
import { leftoverProxies } from './proxy-ports.ts';
import { clearPending } from '../state/journal.ts';
import type { State } from '../state/schema.ts';
import { compare } from './drift.ts';
import type { Host } from './host.ts';
import { removeNetworks } from './network-rm.ts';
import type { Operation, Plan } from './runner.ts';
import { type SysctlKept, dotted, revertPlan } from './sysctl-record.ts';

export interface ResetResult {
  networks: string[];
  /** "network/endpoint" */
  endpoints: string[];
  /** Devices and namespaces of brnet's that the state did not know. */
  leftovers: string[];
  /** Put back: the key (dotted) and the value it has again. */
  reverted: { key: string; value: string }[];
  /** Left as they are, and why. */
  kept: SysctlKept[];
}

/** The state after a reset: no networks, nothing recorded; the settings and the instance id stay. */
export function resetState(state: State): State {
  return { ...state, networks: [], sysctls: { changed: {}, incomplete: false } };
}

export function reset(stateDir: string): Operation<ResetResult> {
  return {
    what: 'reset',
    plan: async (state, host): Promise<Plan<ResetResult>> => {
      // Every family and both backends are read, whatever the settings say now: a setting
      // turned off, or a change of backend, may have left brnet's rules behind.
      const all: State = { ...state, config: { ...state.config, iptables: true, ip6tables: true } };
      const everywhere: Host = { ...host, migrating: () => true };
      const cmp = await compare(all, everywhere);
      if (cmp.foreign.length) throw anotherInstance(cmp.foreign[0]!.instance, cmp.foreign.map((x) => x.what));
      const names = state.networks.map((n) => n.name);
      const gone = names.length ? await removeNetworks(names, { force: true, ifExists: true }).plan(state, host) : null;
      const next = resetState(state);
      const proxies = leftoverProxies(state);
      const leftovers = [...cmp.orphanLinks.map((l) => `device ${l}`), ...cmp.orphanNetns.map((p) => `namespace ${p.name}`), ...proxies.what];
      const leftoverLines = [...cmp.orphanLinks.map((l) => `link del dev ${l}`), ...cmp.orphanNetns.map((p) => `netns del ${p.name}`)];
      const { revert, kept } = revertPlan(state.sysctls, readSysctl);
      // The reversible first (rules, sysctls), then what cannot be undone (veths, namespaces).
      const steps: Step[] = [
        ...cmp.firewall.repair(next),
        ...(revert.length ? [sysctlRevertStep(revert)] : []),
        ...(gone?.steps ?? []),
        ...(leftoverLines.length ? [tolerantBatchStep(leftoverLines)] : []),
        ...proxies.steps,
        { show: [], do: async () => clearPending(stateDir) },
      ];
      const endpoints = state.networks.flatMap((n) => n.endpoints.map((e) => `${n.name}/${e.name}`));
      const result: ResetResult = {
        networks: names,
        endpoints,
        leftovers,
        reverted: revert.map((r) => ({ key: dotted(r.key), value: r.to })),
        kept: kept.map((k) => ({ ...k, key: dotted(k.key) })),
      };
      const changes = steps.length > 1 || JSON.stringify(next) !== JSON.stringify(state);
      const what = [
        names.length && `${names.length} network${names.length > 1 ? 's' : ''}`,
        endpoints.length && `${endpoints.length} endpoint${endpoints.length > 1 ? 's' : ''}`,
        leftovers.length && `${leftovers.length} leftover${leftovers.length > 1 ? 's' : ''}`,
        revert.length && `${revert.length} sysctl${revert.length > 1 ? 's' : ''}`,
      ].filter(Boolean);
      return {
        state: changes ? next : null,
        steps: changes ? steps : [],
        firewall: 'none', // the rules are repaired to nothing among the steps, from what the kernel has
        afterFirewall: gone?.afterFirewall ?? [],
        atEnd: gone?.atEnd ?? [],
        migration: 'settle',
        warnings: kept.map((k) => `${dotted(k.key)}=${k.value} ${k.why}`),
        ...(what.length ? { progress: `resetting ${what.join(', ')}…` } : {}),
        result,
      };
    },
  };
}
