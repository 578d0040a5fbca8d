// Names, identifiers and MAC addresses. Kept pure so the rules are unit-tested as data.
import { createHash, randomBytes } from 'node:crypto';
import { invalid } from '../errors.ts';
import { isIfname, isObjectName } from '../validate/values.ts';

export function checkObjectName(kind: 'network' | 'endpoint', name: string): void {
  if (!isObjectName(name)) {
    throw invalid(
      `invalid ${kind} name "${name}": use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit`,
    );
  }
}

/** Interface names: see validate/values.ts for what is allowed, and why. */
export function checkIfname(what: string, name: string, maxLen = 15): void {
  if (!isIfname(name, maxLen)) {
    throw invalid(`invalid ${what} "${name}": use 1-${maxLen} characters from A-Z a-z 0-9 _ . -, not starting with . or -`);
  }
}

export function newNetworkId(): string {
  return randomBytes(32).toString('hex');
}

export function defaultBridgeName(id: string): string {
  return `br-${id.slice(0, 12)}`;
}

/**
 * A MAC derived from a stable seed, locally administered and unicast. Derived rather than
 * random so that `brnet restore` after a reboot re-creates the same MAC, and an endpoint
 * re-added under the same name keeps its MAC, so neighbours' ARP caches stay right.
 */
export function stableMac(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(s: string): string {
  const m = /^([0-9a-f]{2})([:-][0-9a-f]{2}){5}$/i.test(s);
  if (!m) throw invalid(`invalid MAC address "${s}": expected six hex pairs like 02:42:ac:11:00:02`);
  const mac = s.toLowerCase().replace(/-/g, ':');
  const first = Number.parseInt(mac.slice(0, 2), 16);
  if (first & 1) throw invalid(`invalid MAC address "${s}": a multicast address cannot be used`);
  if (mac === '00:00:00:00:00:00') throw invalid(`invalid MAC address "${s}": all zeros`);
  return mac;
}

export function randomVethName(): string {
  return `veth${randomBytes(4).toString('hex').slice(0, 7)}`;
}

const TRUE = new Set(['1', 't', 'true']);
const FALSE = new Set(['0', 'f', 'false']);
export function parseBool(what: string, v: string): boolean {
  const s = v.toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  throw invalid(`invalid value "${v}" for ${what}: expected true or false (1/0, t/f)`);
}
