// Finding objects in the state, with the not-found errors every command shares.
import { notFound } from '../errors.ts';
import type { Network, State } from '../state/schema.ts';

export function findNetwork(state: State, name: string): Network {
  const n = state.networks.find((x) => x.name === name);
  if (!n) throw notFound(`network ${name} not found`, 'list networks with: brnet network ls');
  return n;
}
