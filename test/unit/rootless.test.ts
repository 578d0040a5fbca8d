import { describe, expect, it } from 'vitest';
import { hasSubordinateIds } from '../../src/core/rootless-start.ts';

describe('subordinate id ranges (/etc/subuid, /etc/subgid)', () => {
  const file = 'root:100000:65536\nalice:165536:65536\n1001:231072:65536\n# comment\nbob:x:65536\ncarol:300000:0\n';
  it.each([
    ['alice', 1000, true], // by name
    ['dave', 1001, true], // by id
    ['bob', 1002, false], // malformed start
    ['carol', 1003, false], // an empty range
    ['erin', 1004, false], // no line
  ])('%s (%i): %s', (name, id, want) => {
    expect(hasSubordinateIds(file, name, id)).toBe(want);
  });
});
