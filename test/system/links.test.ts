// endpoint link / unlink (Docker's legacy links) against the real kernel, in private sandboxes:
// on an ICC-off network, real TCP traffic between two endpoints with servers on 80 and 81.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BACKENDS, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { type EchoServer, probe, startEcho } from '../helpers/traffic.ts';

const readState = (sb: Sandbox) => readFileSync(join(sb.stateDir, 'state.json'), 'utf8');

for (const backend of BACKENDS) {
describeRoot(`endpoint link / unlink on an ICC-off network [${backend}]`, () => {
  let sb: Sandbox;
  const servers: EchoServer[] = [];
  const A = '10.41.0.2';
  const B = '10.41.0.3';
  /** Does a TCP connection from namespace `from` to addr:port get its echo? */
  const reaches = async (from: string, addr: string, port: number) => (await probe(sb, from, 'tcp', addr, port, { timeoutMs: 1_000 })).ok;
  /** check finds nothing to report. */
  const clean = async () => {
    const r = await sb.brnet(['check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  };
  const links = async (ep: string) => (await sb.brnetOk(['endpoint', 'inspect', 'quiet', ep])).json().links;
  /** The kernel's rules that carry endpoint a's mark (its links' rules). */
  const ruleOfA = async () => (await sb.rulesText()).split('\n').filter((l) => /brnet@[0-9a-f]{8}:quiet:a\b/.test(l));

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.brnetOk(['network', 'create', 'quiet', '--subnet', '10.41.0.0/24', '--ipv6', '--subnet', 'fd41::/64', '--no-icc']);
    for (const e of ['a', 'b']) await sb.brnetOk(['endpoint', 'add', 'quiet', e, '--netns', e, '--create-netns']);
    for (const ns of ['a', 'b']) for (const port of [80, 81]) servers.push(await startEcho(sb, ns, 'tcp', port, { v6: true }));
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await sb?.destroy();
  });

  it('without a link, ICC off keeps a and b apart', async () => {
    expect(await reaches('a', B, 80)).toBe(false);
    expect(await reaches('b', A, 80)).toBe(false);
    expect(await links('a')).toEqual([]);
    await clean();
  });

  it('a link lets a reach b on that port, over both families, and nothing else', async () => {
    const r = await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '80', '--json']);
    expect(r.json()).toEqual({ network: 'quiet', endpoint: 'a', links: [{ to: 'b', proto: 'tcp', port: 80 }] });
    expect(await reaches('a', B, 80)).toBe(true);
    expect(await reaches('a', 'fd41::3', 80)).toBe(true);
    expect(await reaches('a', B, 81)).toBe(false);
    expect(await reaches('b', A, 80)).toBe(false);
    expect(await reaches('b', 'fd41::2', 80)).toBe(false);
    expect(await reaches('b', A, 81)).toBe(false);
    expect(await links('a')).toEqual([{ to: 'b', proto: 'tcp', port: 80 }]);
    expect(await links('b')).toEqual([]);
    // network inspect and endpoint ls carry the same endpoint shape
    expect((await sb.brnetOk(['network', 'inspect', 'quiet'])).json().endpoints[0].links).toEqual([{ to: 'b', proto: 'tcp', port: 80 }]);
    expect((await sb.brnetOk(['endpoint', 'ls', 'quiet', '--json'])).json()[0].links).toEqual([{ to: 'b', proto: 'tcp', port: 80 }]);
    // a rule each way per family, marked as endpoint a's (IPv6's neighbour discovery is the network's)
    expect(await ruleOfA()).toHaveLength(4);
    // explain agrees with the traffic just measured, and names the link's rule
    const verdict = async (from: string, to: string) => (await sb.brnetOk(['explain', '--from', from, '--to', to, '--json'])).json();
    const ok = await verdict('quiet/a', 'quiet/b:80');
    expect(ok.verdict).toBe('allowed');
    expect(ok.rules.some((x: { owner: string; rule: string }) => x.owner === 'quiet:a' && x.rule.includes('--dport 80'))).toBe(true);
    expect((await verdict('quiet/a', 'quiet/b:81')).verdict).toBe('blocked');
    expect((await verdict('quiet/b', 'quiet/a:80')).verdict).toBe('blocked');
    expect((await verdict('quiet/a', '[fd41::3]:80')).verdict).toBe('allowed');
    await clean();
  });

  it('b cannot open a connection to a from the linked port either', async () => {
    // A client in b bound to source port 82 (the way back of a link to b:82, where nothing
    // listens), to a's server on 81: the reference's rule back would let it through.
    await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '82']);
    const script = `const s=require('net').connect({host:'${A}',port:81,localPort:82});s.on('connect',()=>{console.log('open');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},1000)`;
    const r = await sb.exec(Sandbox.nsArgv('b', [process.execPath, '-e', script]));
    expect(r.stdout.trim()).toBe('timeout');
    await sb.brnetOk(['endpoint', 'unlink', 'quiet', 'a', 'b', '82']);
  });

  it('linking again changes nothing; text output names the link', async () => {
    const before = await sb.rulesText();
    const again = await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '80/tcp']);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/already linked to b/);
    expect(await sb.rulesText()).toBe(before);
    const more = await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '81']);
    expect(more.stdout).toBe('a -> b 81/tcp\n');
    expect(await reaches('a', B, 81)).toBe(true);
    await sb.brnetOk(['endpoint', 'unlink', 'quiet', 'a', 'b', '81']);
    expect(await reaches('a', B, 81)).toBe(false);
    expect(await reaches('a', B, 80)).toBe(true);
    await clean();
  });

  it('bad input: unknown endpoint 3, bad port 2, self link 2, missing link 3; nothing changed', async () => {
    const state = readState(sb);
    const rules = await sb.rulesText();
    for (const [args, code, msg] of [
      [['endpoint', 'link', 'quiet', 'a', 'ghost', '80'], 3, /endpoint ghost not found in network quiet/],
      [['endpoint', 'link', 'quiet', 'ghost', 'b', '80'], 3, /endpoint ghost not found/],
      [['endpoint', 'link', 'nonet', 'a', 'b', '80'], 3, /network nonet not found/],
      [['endpoint', 'link', 'quiet', 'a', 'b', '0'], 2, /invalid port "0"/],
      [['endpoint', 'link', 'quiet', 'a', 'b', '65536'], 2, /invalid port "65536"/],
      [['endpoint', 'link', 'quiet', 'a', 'b', '80/icmp'], 2, /unknown protocol "icmp"/],
      [['endpoint', 'link', 'quiet', 'a', 'b', 'http'], 2, /invalid port "http"/],
      [['endpoint', 'link', 'quiet', 'a', 'b', '80-81'], 2, /invalid port "80-81"/],
      [['endpoint', 'link', 'quiet', 'a', 'b'], 2, /missing required argument 'port'/],
      [['endpoint', 'link', 'quiet', 'a', 'a', '80'], 2, /cannot be linked to itself/],
      [['endpoint', 'unlink', 'quiet', 'a', 'b', '443'], 3, /has no link to b on 443\/tcp/],
      [['endpoint', 'unlink', 'quiet', 'a', 'ghost'], 3, /endpoint ghost not found/],
      [['endpoint', 'unlink', 'quiet', 'a', 'b', 'x'], 2, /invalid port "x"/],
    ] as const) {
      const r = await sb.brnet([...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2); // one line, maybe a hint
    }
    expect(readState(sb)).toBe(state);
    expect(await sb.rulesText()).toBe(rules);
    const none = await sb.brnetOk(['endpoint', 'unlink', 'quiet', 'b', 'a']);
    expect(none.stderr).toMatch(/has no links to a/);
  });

  it('--dry-run prints the rule change and changes nothing; a batch links and unlinks', async () => {
    const rules = await sb.rulesText();
    const dry = await sb.brnetOk(['endpoint', 'link', 'quiet', 'b', 'a', '81', '--dry-run']);
    expect(dry.stdout).toMatch(backend === 'iptables' ? /iptables-restore --noflush/ : /nft -f -/);
    expect(dry.stdout).toContain(`${B}`);
    expect(await sb.rulesText()).toBe(rules);
    expect(await links('b')).toEqual([]);
    await sb.brnetOk(['batch', '-'], { input: 'endpoint link quiet b a 81\nendpoint unlink quiet a b\n' });
    expect(await links('a')).toEqual([]);
    expect(await links('b')).toEqual([{ to: 'a', proto: 'tcp', port: 81 }]);
    expect(await reaches('b', A, 81)).toBe(true);
    expect(await reaches('a', B, 80)).toBe(false);
    // a failing line rolls the whole batch back
    const bad = await sb.brnet(['batch', '-'], { input: 'endpoint link quiet a b 80\nendpoint link quiet a ghost 80\n' });
    expect(bad.code).toBe(3);
    expect(await links('a')).toEqual([]);
    expect(await reaches('a', B, 80)).toBe(false);
    await sb.brnetOk(['endpoint', 'unlink', 'quiet', 'b', 'a']);
    await clean();
  });

  it('unlink blocks again, and a connection the link let through is cut', async () => {
    await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '80']);
    expect(await reaches('a', B, 80)).toBe(true);
    // an open connection from a to b:80, as the kernel tracks it, and one to b:81 (not the link's)
    const flow = (port: number) => ['-p', 'tcp', '-s', A, '-d', B, '--sport', '40000', '--dport', String(port)];
    for (const port of [80, 81]) {
      const ins = await sb.exec(['conntrack', '-I', ...flow(port), '-t', '120', '--state', 'ESTABLISHED']);
      expect(ins.code, ins.stderr).toBe(0);
    }
    const tracked = async (port: number) => (await sb.exec(['conntrack', '-L', '-p', 'tcp', '--orig-src', A, '--orig-dst', B, '--orig-port-dst', String(port)])).stdout.trim();
    expect(await tracked(80)).not.toBe('');
    await sb.brnetOk(['endpoint', 'unlink', 'quiet', 'a', 'b', '80']);
    expect(await tracked(80)).toBe('');
    expect(await tracked(81)).not.toBe('');
    await sb.exec(['conntrack', '-D', ...flow(81)]);
    expect(await reaches('a', B, 80)).toBe(false);
    expect(await links('a')).toEqual([]);
    expect(await ruleOfA()).toEqual([]);
    await clean();
  });

  it('restore brings a link back after a flush, and check reports its loss', async () => {
    await sb.brnetOk(['endpoint', 'link', 'quiet', 'a', 'b', '80']);
    await sb.sh(backend === 'iptables' ? 'for t in filter nat raw; do iptables -t $t -F; ip6tables -t $t -F; done' : 'nft flush ruleset');
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    await sb.brnetOk(['restore']);
    await clean();
    expect(await reaches('a', B, 80)).toBe(true);
    expect(await reaches('a', B, 81)).toBe(false);
  });

  it('a deleted link rule alone is drift that restore repairs', async () => {
    if (backend === 'iptables') {
      const rule = (await sb.iptablesSave(4)).split('\n').find((l) => l.includes(`-s ${A}/32 -d ${B}/32`));
      expect(rule).toBeDefined();
      await sb.sh(`iptables ${rule!.replace(/^-A /, '-D ')}`);
    } else {
      const handle = (await sb.sh("nft -a list table ip brnet | awk '/dport 80 counter/ && /accept/ {print $NF; exit}'")).stdout.trim();
      const chain = (await sb.sh("nft list table ip brnet | awk '/chain icc-/ {print $2}' | head -1")).stdout.trim();
      expect(handle).toMatch(/^\d+$/);
      await sb.sh(`nft delete rule ip brnet ${chain} handle ${handle}`);
    }
    const r = await sb.brnet(['check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/missing: .*(10\.41\.0\.2.*10\.41\.0\.3|icc-)/);
    expect(await reaches('a', B, 80)).toBe(false);
    await sb.brnetOk(['restore']);
    await clean();
    expect(await reaches('a', B, 80)).toBe(true);
  });

  it('endpoint rm of TO removes the link and its rules', async () => {
    expect(await ruleOfA()).toHaveLength(4);
    await sb.brnetOk(['endpoint', 'rm', 'quiet', 'b']);
    expect(await links('a')).toEqual([]);
    expect(await ruleOfA()).toEqual([]);
    await clean();
    expect(JSON.parse(readState(sb)).networks[0].endpoints[0].links).toEqual([]);
  });
});

describeRoot(`endpoint link on an ICC-on network, and an internal ICC-off one [${backend}]`, () => {
  let sb: Sandbox;
  const servers: EchoServer[] = [];

  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    await sb.brnetOk(['network', 'create', 'open', '--subnet', '10.42.0.0/24']);
    await sb.brnetOk(['network', 'create', 'inner', '--subnet', '10.43.0.0/24', '--internal', '--no-icc']);
    for (const [n, e] of [['open', 'o1'], ['open', 'o2'], ['inner', 'i1'], ['inner', 'i2']] as const) {
      await sb.brnetOk(['endpoint', 'add', n, e, '--netns', e, '--create-netns']);
    }
    for (const ns of ['o2', 'i2']) for (const port of [80, 81]) servers.push(await startEcho(sb, ns, 'tcp', port));
    servers.push(await startEcho(sb, 'i2', 'udp', 53));
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await sb?.destroy();
  });

  it('ICC on: the link is recorded, said to change nothing, and adds no rule', async () => {
    const before = await sb.rulesText();
    const r = await sb.brnetOk(['endpoint', 'link', 'open', 'o1', 'o2', '80']);
    expect(r.stderr).toMatch(/ICC on/);
    expect((await sb.brnetOk(['endpoint', 'inspect', 'open', 'o1'])).json().links).toEqual([{ to: 'o2', proto: 'tcp', port: 80 }]);
    expect(await sb.rulesText()).toBe(before);
    expect((await probe(sb, 'o1', 'tcp', '10.42.0.3', 81)).ok).toBe(true);
    expect((await sb.brnet(['check'])).code).toBe(0);
    await sb.brnetOk(['endpoint', 'rm', 'open', 'o1']);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });

  it('internal, ICC off: a link opens its ports (TCP and UDP), replies come back without conntrack accepts', async () => {
    expect((await probe(sb, 'i1', 'tcp', '10.43.0.3', 80, { timeoutMs: 1_000 })).ok).toBe(false);
    await sb.brnetOk(['endpoint', 'link', 'inner', 'i1', 'i2', '80', '53/udp']);
    expect((await probe(sb, 'i1', 'tcp', '10.43.0.3', 80)).ok).toBe(true);
    expect((await probe(sb, 'i1', 'udp', '10.43.0.3', 53)).ok).toBe(true);
    expect((await probe(sb, 'i1', 'tcp', '10.43.0.3', 81, { timeoutMs: 1_000 })).ok).toBe(false);
    expect((await sb.brnet(['check'])).code).toBe(0);
    // removing FROM takes its links and their rules with it
    await sb.brnetOk(['endpoint', 'rm', 'inner', 'i1']);
    expect((await sb.rulesText()).split('\n').filter((l) => /:inner:i1\b/.test(l))).toEqual([]);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });
});
}
