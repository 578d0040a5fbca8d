import { describe, expect, it } from 'vitest';
import { chainEdits, diffPayload, jumpOpsFor, parseSave } from '../../src/firewall/iptables.ts';
import { type Ruleset, TABLES, jumps, renderRules } from '../../src/firewall/rules.ts';
import { emptyState } from '../../src/state/schema.ts';
import { fixtureState } from '../fixtures/state.ts';

/** The whole rule set as iptables-restore text: what `brnet restore` would apply. */
function asText(rs: Ruleset): string {
  const empty = { raw: new Map(), filter: new Map(), nat: new Map() };
  return `# IPv4\n${diffPayload(empty, rs[4], { add: [], remove: [] })}# IPv6\n${diffPayload(empty, rs[6], { add: [], remove: [] })}`;
}

describe('renderRules', () => {
  it('renders every kind of network as the reference driver does (file snapshot)', async () => {
    await expect(asText(renderRules(fixtureState()))).toMatchFileSnapshot('./__snapshots__/fixture.rules');
  });

  it('renders nothing for an empty state, and nothing for a family that is switched off', () => {
    const none = renderRules(emptyState());
    for (const t of TABLES) expect(none[4][t].size + none[6][t].size).toBe(0);
    const s = fixtureState();
    s.config.iptables = false;
    const rs = renderRules(s);
    for (const t of TABLES) expect(rs[4][t].size).toBe(0);
    expect(rs[6].filter.size).toBeGreaterThan(0);
  });

  it('with `only`, renders complete dispatchers and the chains of the named networks alone', () => {
    const full = renderRules(fixtureState());
    const part = renderRules(fixtureState(), new Set(['quiet']));
    expect(part[4].filter.get('BRNET-FORWARD')).toEqual(full[4].filter.get('BRNET-FORWARD'));
    expect(part[4].nat.get('BRNET-DNAT')).toEqual(full[4].nat.get('BRNET-DNAT'));
    expect([...part[4].filter.keys()].sort()).toEqual(['BRNET-FORWARD', 'BRNET-IN-bbbbbbbbbbbb']);
    expect(part[4].nat.get('BRNET-POST-bbbbbbbbbbbb')).toEqual(full[4].nat.get('BRNET-POST-bbbbbbbbbbbb'));
    expect(part[4].nat.has('BRNET-POST-aaaaaaaaaaaa')).toBe(false);
  });

  it('tags every rule with its owner', () => {
    const rs = renderRules(fixtureState());
    for (const f of [4, 6] as const)
      for (const t of TABLES) for (const rules of rs[f][t].values()) for (const r of rules) expect(r).toMatch(/--comment brnet:[\w.-]+(:[\w.-]+)?( |$)/);
  });

  it('keeps ingress filtering ahead of every outgoing accept in the dispatcher', () => {
    const fwd = renderRules(fixtureState())[4].filter.get('BRNET-FORWARD') ?? [];
    const lastIngress = Math.max(...fwd.map((r, i) => (/-j (BRNET-IN-|DROP)/.test(r) && !/-i \S+ -o/.test(r) ? i : -1)));
    const firstOutgoing = fwd.findIndex((r) => /^-i \S+ (! -o \S+ )?-m comment --comment \S+ -j ACCEPT$/.test(r));
    expect(firstOutgoing).toBeGreaterThan(lastIngress);
  });
});

describe('diffPayload', () => {
  it('sends only the chains that changed, and deletes chains that went away', () => {
    const a = fixtureState();
    const b = fixtureState();
    b.networks[0]?.endpoints[1]?.ports.push({ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 9000, containerPort: 9000 });
    const p = diffPayload(renderRules(a)[4], renderRules(b)[4], { add: [], remove: [] });
    expect(p).toContain(':BRNET-DNAT-aaaaaaaaaaaa - [0:0]');
    expect(p).toContain('--dport 9000');
    expect(p).not.toContain('BRNET-IN-bbbbbbbbbbbb'); // other networks untouched
    const c = fixtureState();
    c.networks = c.networks.filter((n) => n.name !== 'open');
    const del = diffPayload(renderRules(a)[4], renderRules(c)[4], { add: [], remove: [] });
    expect(del).toMatch(/:BRNET-IN-eeeeeeeeeeee - \[0:0\][\s\S]*-X BRNET-IN-eeeeeeeeeeee/);
    expect(diffPayload(renderRules(a)[4], renderRules(a)[4], { add: [], remove: [] })).toBe('');
  });

  it('inserts missing jumps and removes every copy of present ones', () => {
    const kernel = parseSave(
      '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m comment --comment "brnet" -j BRNET-FORWARD\n-A FORWARD -m comment --comment "brnet" -j BRNET-FORWARD\nCOMMIT\n',
    );
    const add = jumpOpsFor(kernel, true);
    expect(add.add.map((j) => `${j.table}/${j.chain}`)).toEqual(['nat/PREROUTING', 'nat/OUTPUT', 'nat/POSTROUTING', 'raw/PREROUTING']);
    const rm = jumpOpsFor(kernel, false);
    expect(rm.remove).toHaveLength(2);
    expect(jumps()).toHaveLength(5);
  });

  it('parses iptables-save output back into the rendered form (round trip of comments)', () => {
    const rendered = renderRules(fixtureState())[4];
    const text = `*filter\n:BRNET-FORWARD - [0:0]\n${(rendered.filter.get('BRNET-FORWARD') ?? [])
      .map((r) => `-A BRNET-FORWARD ${r.replace(/--comment (\S+)/, '--comment "$1"')}`)
      .join('\n')}\nCOMMIT\n`;
    expect(parseSave(text).tables.filter.get('BRNET-FORWARD')).toEqual(rendered.filter.get('BRNET-FORWARD'));
  });
});

describe('chainEdits', () => {
  const rules = (n: number, tag = 'r') => Array.from({ length: n }, (_, i) => `-o br${i} -m comment --comment brnet:${tag}${i} -j ACCEPT`);
  /** Applies edits the way iptables-restore does, to check they produce `want`. */
  function apply(old: string[], lines: string[]): string[] {
    const chain = [...old];
    for (const l of lines) {
      const del = /^-D C (.*)$/.exec(l);
      const ins = /^-I C (\d+) (.*)$/.exec(l);
      if (del) chain.splice(chain.indexOf(del[1] as string), 1);
      else if (ins) chain.splice(Number(ins[1]) - 1, 0, ins[2] as string);
    }
    return chain;
  }
  it.each([
    ['insert in the middle', rules(20), [...rules(20).slice(0, 7), 'NEW', ...rules(20).slice(7)]],
    ['delete two', rules(20), rules(20).filter((_, i) => i !== 3 && i !== 15)],
    ['insert and delete in several groups', rules(30), [...rules(30).slice(0, 10), 'A', ...rules(30).slice(11, 20), 'B', ...rules(30).slice(20)]],
  ])('%s', (_name, old, want) => {
    const e = chainEdits('C', old, want);
    expect(e).not.toBeNull();
    expect(e!.length).toBeLessThanOrEqual(3);
    expect(apply(old, e!)).toEqual(want);
  });
  it('edits small chains in place too: inserting deletes nothing', () => {
    const want = [...rules(3), ...rules(1, 'x')];
    expect(chainEdits('C', rules(3), want)).toEqual([`-I C 4 ${rules(1, 'x')[0]}`]);
    expect(chainEdits('C', rules(3), rules(2))).toEqual([`-D C ${rules(3)[2]}`]);
  });
  it('re-declares new or rewritten chains', () => {
    expect(chainEdits('C', [], rules(2))).toBeNull();
    expect(chainEdits('C', rules(20, 'a'), rules(20, 'b'))).toBeNull();
  });
});
