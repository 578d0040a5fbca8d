import { describe, expect, it } from 'vitest';
import { exposureOf, rootlessPortSteps } from '../../src/core/rootless-ports.ts';
import { hasSubordinateIds } from '../../src/core/rootless-start.ts';
import { type Port, PortSchema, type State, emptyState } from '../../src/state/schema.ts';
import { ep, net } from '../fixtures/state.ts';

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

describe('rootlesskit exposures of published ports', () => {
  const p = (proto: Port['proto'], hostIp: string, hostPort: number, containerPort: number, rootlesskit?: number): Port => ({ proto, hostIp, hostPort, containerPort, ...(rootlesskit === undefined ? {} : { rootlesskit }) });
  const stateWith = (ports: Port[]): State => {
    const e = ep('app', '10.1.0.2/24', { ipv6: 'fd00::2/64', ports });
    return { ...emptyState(), networks: [net('web', 'a', { endpoints: [e] })] };
  };

  it.each([
    [p('tcp', '0.0.0.0', 8080, 80), { proto: 'tcp', parentIP: '0.0.0.0', parentPort: 8080, childIP: '10.1.0.2', childPort: 80 }],
    [p('udp', '127.0.0.1', 5353, 53), { proto: 'udp', parentIP: '127.0.0.1', parentPort: 5353, childIP: '10.1.0.2', childPort: 53 }],
    [p('tcp', 'fd98::1', 8080, 80), { proto: 'tcp', parentIP: 'fd98::1', parentPort: 8080, childIP: 'fd00::2', childPort: 80 }],
    [p('sctp', '0.0.0.0', 9000, 9000), null], // the builtin driver has TCP and UDP only
    [p('tcp', '0.0.0.0', 0, 80), null], // a routed network's opened port
  ])('%o -> %o', (port, want) => {
    const s = stateWith([port]);
    const n = s.networks[0]!;
    expect(exposureOf({ net: n, ep: n.endpoints[0]!, port })).toEqual(want);
  });

  it('one exposure for 0.0.0.0 and :: on the same port; none for an address family the endpoint lacks', () => {
    const both = [p('tcp', '0.0.0.0', 8080, 80), p('tcp', '::', 8080, 80)];
    const s = stateWith(both);
    const n = s.networks[0]!;
    expect(both.map((port) => exposureOf({ net: n, ep: n.endpoints[0]!, port }))).toEqual([expect.objectContaining({ parentIP: '0.0.0.0' }), null]);
    const v4only = { ...n.endpoints[0]!, ipv6: null };
    expect(exposureOf({ net: n, ep: v4only, port: p('tcp', '::1', 8080, 80) })).toBeNull();
  });

  it('the steps are the difference of the bindings: added ones exposed, removed ones deleted by their id, nothing outside rootlesskit', () => {
    const before = stateWith([p('tcp', '0.0.0.0', 8080, 80, 7), p('udp', '0.0.0.0', 5353, 53, 8)]);
    const kept = before.networks[0]!.endpoints[0]!.ports[0]!;
    const after = stateWith([kept, p('tcp', '0.0.0.0', 9090, 90)]);
    const saved = process.env.ROOTLESSKIT_STATE_DIR;
    try {
      delete process.env.ROOTLESSKIT_STATE_DIR;
      expect(rootlessPortSteps(before, after)).toEqual([]);
      process.env.ROOTLESSKIT_STATE_DIR = '/run/user/1000/rootlesskit';
      expect(rootlessPortSteps(before, after).flatMap((s) => s.show)).toEqual([
        '# rootlesskit: DELETE /v1/ports/8 (0.0.0.0:5353/udp -> 10.1.0.2:53)',
        '# rootlesskit: POST /v1/ports {"proto":"tcp","parentIP":"0.0.0.0","parentPort":9090,"childIP":"10.1.0.2","childPort":90}',
      ]);
    } finally {
      if (saved === undefined) delete process.env.ROOTLESSKIT_STATE_DIR;
      else process.env.ROOTLESSKIT_STATE_DIR = saved;
    }
  });

  it('the state file keeps the id, and refuses one that is not a small integer', () => {
    const file = { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 };
    expect(PortSchema({ ...file, rootlesskit: 3 })).toEqual({ ...file, rootlesskit: 3 });
    expect(PortSchema(file)).toEqual(file);
    expect(() => PortSchema({ ...file, rootlesskit: 'x' })).toThrow(/rootlesskit/);
  });
});
