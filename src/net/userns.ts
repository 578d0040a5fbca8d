// Which user namespace brnet runs in: root of the initial one, or not (rootless).
import { readFileSync } from 'node:fs';

/**
 * The initial user namespace maps every uid to itself, in one line: `0 0 4294967295`. Any
 * other map is a child namespace, where uid 0 is root only of that namespace (rootlesskit,
 * `unshare -r`). An unreadable map (no procfs) counts as the initial one.
 */
export function initialUserNamespace(uidMap: string): boolean {
  const lines = uidMap.trim().split('\n').filter(Boolean);
  return lines.length === 1 && /^\s*0\s+0\s+4294967295\s*$/.test(lines[0]!);
}

/** Not uid 0 in the initial user namespace. */
export function isRootless(): boolean {
  if ((process.geteuid?.() ?? 0) !== 0) return true;
  let map: string;
  try {
    map = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return false;
  }
  return !initialUserNamespace(map);
}
