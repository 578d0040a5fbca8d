// brnet batch: many commands, one lock, one firewall commit, all or nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

let sb: Sandbox;

describeRoot('batch', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('creates a network and 100 endpoints with a published port each, in one invocation', async () => {
    const lines = ['# provisioning', 'network create bulk --subnet 10.77.0.0/24', ''];
    for (let i = 0; i < 100; i++) lines.push(`endpoint add bulk e${i} --netns n${i} --create-netns -p ${40000 + i}:8000`);
    const r = await sb.brnet(['batch', '-', '--debug'], { input: `${lines.join('\n')}\n`, timeoutMs: 120_000 });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    // one firewall commit for the whole batch
    expect(r.stderr.match(/^\+ iptables-restore/gm)).toHaveLength(1);
    const eps = (await sb.brnetOk(['endpoint', 'ls', 'bulk', '--json'])).json();
    expect(eps).toHaveLength(100);
    expect(new Set(eps.map((e: any) => e.ipv4)).size).toBe(100);
    expect((await sb.brnetOk(['port', 'ls', '-q'])).stdout.trim().split('\n')).toHaveLength(100);
    expect((await sb.brnet(['check'])).code).toBe(0);
    // and the ports work
    const client = await sb.addOutsideClient();
    const echo = await startEcho(sb, 'n42', 'tcp', 8000);
    const p = await probe(sb, client.ns, 'tcp', client.hostIp, 40042);
    expect(p.ok).toBe(true);
    expect(p.peer).toBe(client.ip);
    await echo.stop();
  });

  it('a failing line applies nothing, names the line, and leaves the state file as it was', async () => {
    const file = join(sb.stateDir, 'state.json');
    const before = readFileSync(file, 'utf8');
    const rules = await sb.iptablesSave(4);
    const links = (await sb.sh('ip -br link | wc -l; ip netns list | wc -l')).stdout;
    const input = 'network create extra --subnet 10.78.0.0/24\nendpoint add extra x1 --netns x1 --create-netns -p 41000:80\nendpoint add bulk e0 --netns zz --create-netns\n';
    const r = await sb.brnet(['batch', '-'], { input });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^brnet: line 3: /);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(await sb.iptablesSave(4)).toBe(rules);
    expect((await sb.sh('ip -br link | wc -l; ip netns list | wc -l')).stdout).toBe(links);
    const usage = await sb.brnet(['batch', '-'], { input: 'network create ok1\nnetwork frob\n' });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^brnet: line 2: /);
    expect(readFileSync(file, 'utf8')).toBe(before);
    // A line may not carry global options, nor be a command that changes nothing.
    for (const [line, why] of [
      ['network create g1 --subnet 10.83.0.0/24 --json', /^brnet: line 2: unknown option '--json'/],
      ['network create g1 --subnet 10.83.0.0/24 --state-dir /tmp/elsewhere', /^brnet: line 2: unknown option '--state-dir'/],
      ['network ls', /^brnet: line 2: `network ls` changes nothing and cannot run inside a batch/],
    ] as const) {
      const r2 = await sb.brnet(['batch', '-'], { input: `network create ok2 --subnet 10.84.0.0/24\n${line}\n` });
      expect(r2.code, line).toBe(2);
      expect(r2.stderr, line).toMatch(why);
      expect(readFileSync(file, 'utf8')).toBe(before);
    }
  });

  it('removes 100 endpoints in one invocation: namespaces and veths go, torn down together at the end', async () => {
    const ours = async () => (await sb.ipJson(['link', 'show', 'type', 'veth'])).filter((l: any) => /^brnet@[0-9a-f]{8}:bulk:/.test(l.ifalias ?? ''));
    expect(await ours()).toHaveLength(100);
    const lines = Array.from({ length: 100 }, (_, i) => `endpoint rm bulk e${i}`);
    const r = await sb.brnet(['batch', '-', '--debug'], { input: `${lines.join('\n')}\n`, timeoutMs: 120_000 });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr.match(/^\+ iptables-restore/gm)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/link del/); // no veth had to be deleted on its own
    expect((await sb.brnetOk(['endpoint', 'ls', 'bulk', '-q'])).stdout).toBe('');
    expect((await sb.sh('ip netns list')).stdout).not.toMatch(/^n\d+\b/m);
    expect(await ours()).toEqual([]);
    expect((await sb.brnet(['check'])).code).toBe(0);
  });

  it('options given on one line do not carry over to the next', async () => {
    const input = [
      'network create opts --subnet 10.81.0.0/24 --no-icc --label a=b',
      'network create plain2 --subnet 10.82.0.0/24',
      'endpoint add opts x --netns ox --create-netns --ip 10.81.0.50 -p 41000:80',
      'endpoint add opts y --netns oy --create-netns',
    ].join('\n');
    await sb.brnetOk(['batch', '-'], { input });
    const plain = (await sb.brnetOk(['network', 'inspect', 'plain2'])).json();
    expect(plain.icc).toBe(true);
    expect(plain.labels).toEqual({});
    const y = (await sb.brnetOk(['endpoint', 'inspect', 'opts', 'y'])).json();
    expect(y.ipv4).toBe('10.81.0.2/24');
    expect(y.ports).toEqual([]);
    await sb.brnetOk(['network', 'rm', '--force', 'opts', 'plain2']);
  });

  it('--dry-run prints the combined plan with a single firewall payload', async () => {
    const r = await sb.brnetOk(['batch', '-', '--dry-run'], { input: 'network create d1 --subnet 10.79.0.0/24\nnetwork create d2 --subnet 10.80.0.0/24\n' });
    expect(r.stdout.match(/^ip link add name /gm)).toHaveLength(2);
    expect(r.stdout.match(/^iptables-restore --noflush/gm)).toHaveLength(1);
    expect((await sb.brnet(['network', 'inspect', 'd1'])).code).toBe(3);
  });
});
