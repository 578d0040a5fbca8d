// network prune: remove every network without endpoints (of those the filters select), as
// `docker network prune` does. The networks are chosen under the lock, from the state as it
// is then; a network that gained an endpoint since the user confirmed is left alone.
import type { Network, State } from '../state/schema.ts';
import { type Filters, matches } from './network-filter.ts';
import { type Removed, removeNetworks } from './network-rm.ts';
import type { Operation } from './runner.ts';

export function pruneCandidates(state: State, filters: Filters): Network[] {
  return state.networks.filter((n) => !n.endpoints.length && matches(n, filters));
}

/** `confirmed`: the IDs the user said yes to; null when --yes spared the question. */
export function pruneNetworks(filters: Filters, confirmed: ReadonlySet<string> | null): Operation<Removed> {
  return {
    what: 'prune networks',
    plan: async (state, host) => {
      const ids = pruneCandidates(state, filters)
        .filter((n) => confirmed === null || confirmed.has(n.id))
        .map((n) => n.id);
      return removeNetworks(ids, {}).plan(state, host);
    },
  };
}
