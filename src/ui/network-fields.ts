// The fields --format offers for a network, named as `docker network ls --format` names them
// where Docker has one (ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt), and
// brnet's own beside them.
import type { Network } from '../state/schema.ts';
import type { Fields } from './format.ts';

const labels = (n: Network) =>
  Object.entries(n.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** `ls` shows 12 digits of the ID (its ID column, Docker's ls), `inspect` all 64 (.Id both). */
export function networkFields(idLength: 12 | 64): Fields<Network> {
  return {
    ID: { header: 'NETWORK ID', get: (n) => n.id.slice(0, idLength) },
    Id: { header: 'ID', get: (n) => n.id },
    Name: { header: 'NAME', get: (n) => n.name },
    Driver: { header: 'DRIVER', get: () => 'bridge' },
    Scope: { header: 'SCOPE', get: () => 'local' },
    Bridge: { header: 'BRIDGE', get: (n) => n.bridge },
    Subnets: { header: 'SUBNETS', get: (n) => [n.ipv4?.subnet, n.ipv6?.subnet].filter(Boolean).join(',') },
    IPv4: { header: 'IPV4', get: (n) => n.ipv4 !== null },
    IPv6: { header: 'IPV6', get: (n) => n.ipv6 !== null },
    Internal: { header: 'INTERNAL', get: (n) => n.internal },
    Labels: { header: 'LABELS', get: labels },
    Endpoints: { header: 'ENDPOINTS', get: (n) => n.endpoints.length },
    CreatedAt: { header: 'CREATED AT', get: (n) => n.created },
  };
}
