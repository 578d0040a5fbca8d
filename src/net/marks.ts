// How brnet knows its own objects: a mark naming the instance (the state dir) that made them.
// Devices carry it as their alias (`ip link set … alias`), rules in their comment:
//   bridge            brnet@<instance>:<network>
//   veth, both ends   brnet@<instance>:<network>:<endpoint>
//   lo of a namespace brnet created   brnet@<instance>:netns:<token>
//   rules             brnet@<instance>:<owner>, jumps from built-in chains brnet@<instance>
// Marks written before instances existed read `brnet:<…>` and count as this instance's: an
// upgraded host has only one state dir's objects, and its next call re-marks its rules.
// The instance id is random, kept in the state file: a crash leftover carries this state
// dir's id and is cleaned up; another state dir's objects carry another id and are never
// touched.

export interface Mark {
  /** null for a mark written before instances existed. */
  instance: string | null;
  /** What follows the instance: "web", "web:app", "netns:<token>". */
  what: string;
}

export const isInstanceId = (s: string): boolean => /^[0-9a-f]{8}$/.test(s);

/** Eight random hex digits, from the runtime's generator (no module to load). */
export function randomHex(): string {
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export const markPrefix = (instance: string | null): string => (instance ? `brnet@${instance}` : 'brnet');

export const deviceMark = (instance: string | null, network: string, endpoint?: string): string =>
  `${markPrefix(instance)}:${network}${endpoint ? `:${endpoint}` : ''}`;

export const netnsMark = (instance: string | null, token: string): string => `${markPrefix(instance)}:netns:${token}`;

export function parseMark(text: string | null | undefined): Mark | null {
  if (!text) return null;
  const m = /^brnet@([0-9a-f]{8}):(.+)$/.exec(text);
  if (m) return { instance: m[1] as string, what: m[2] as string };
  if (text.startsWith('brnet:') && text.length > 6) return { instance: null, what: text.slice(6) };
  return null;
}

export type Owner = 'ours' | 'foreign' | 'none';

/** Whose mark `text` is, seen from instance `mine`. */
export function ownerOf(text: string | null | undefined, mine: string | null): Owner {
  const m = parseMark(text);
  if (!m) return 'none';
  return m.instance === null || m.instance === mine ? 'ours' : 'foreign';
}

/** Is `text` this instance's mark for exactly `what`? */
export function isOwnMark(text: string | null | undefined, mine: string | null, what: string): boolean {
  const m = parseMark(text);
  return m !== null && (m.instance === null || m.instance === mine) && m.what === what;
}

/**
 * The device group of every bridge brnet makes (`ip link … group`): what lets two fixed rules
 * in iptables' FORWARD chain accept all of them (firewall/rules.ts forwardAccepts).
 */
export const BRIDGE_GROUP = 0x2bad;
export const BRIDGE_GROUP_HEX = '0x2bad';
