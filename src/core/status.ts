// Which endpoints are stale, for the commands that list them: the checks of core/identity.ts
// that need no process (stat, /proc, sysfs), and the loopback's mark only where nothing
// cheaper can tell. Loaded only when there are endpoints to show.
import type { Endpoint, State } from '../state/schema.ts';
import { liveHost } from './host.ts';
import { staleEndpoints } from './identity.ts';

export async function staleSet(state: State): Promise<ReadonlySet<Endpoint>> {
  if (!state.networks.some((n) => n.endpoints.length)) return new Set();
  try {
    return new Set((await staleEndpoints(state, liveHost())).keys());
  } catch {
    return new Set(); // not root, say: the namespaces cannot be looked at, so none is called stale
  }
}
