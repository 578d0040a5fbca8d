// Direct (routed, not DNATed) access to endpoint addresses from outside the bridge, by mode.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BACKENDS, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { type OutsideClient } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

for (const backend of BACKENDS) {
let sb: Sandbox;
let client: OutsideClient;
const addr = async (net: string, ep: string) => ((await sb.brnetOk(['endpoint', 'inspect', net, ep, '--json'])).json().ipv4 as string).split('/')[0] as string;

describeRoot(`direct access to endpoint addresses [${backend}]`, () => {
  beforeAll(async () => {
    sb = await Sandbox.create({ backend });
    client = await sb.addOutsideClient();
    // the client knows the way to every test subnet through the sandbox host
    await sb.inNs(client.ns, 'ip route add 10.91.0.0/16 via 198.18.0.1');
    await sb.brnetOk(['network', 'create', 'natnet', '--subnet', '10.91.1.0/24']);
    await sb.brnetOk(['network', 'create', 'rtnet', '--subnet', '10.91.2.0/24', '--gateway-mode-ipv4', 'routed']);
    await sb.brnetOk(['network', 'create', 'trusted', '--subnet', '10.91.3.0/24', '--trusted-interface', 'up0']);
    await sb.brnetOk(['endpoint', 'add', 'natnet', 'a', '--netns', 'na', '--create-netns', '-p', '8091:80']);
    await sb.brnetOk(['endpoint', 'add', 'rtnet', 'b', '--netns', 'nb', '--create-netns', '-p', '80']);
    await sb.brnetOk(['endpoint', 'add', 'trusted', 'c', '--netns', 'nc', '--create-netns', '-p', '8093:80']);
    for (const ns of ['na', 'nb', 'nc']) {
      await startEcho(sb, ns, 'tcp', 80);
      await startEcho(sb, ns, 'tcp', 81);
    }
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('nat mode: only the published host port leads in; the container address is not routable', async () => {
    const cip = await addr('natnet', 'a');
    const viaHost = await probe(sb, client.ns, 'tcp', client.hostIp, 8091);
    expect(viaHost.ok).toBe(true);
    expect(viaHost.peer).toBe(client.ip);
    expect((await probe(sb, client.ns, 'tcp', cip, 80, { timeoutMs: 800 })).ok).toBe(false);
    expect((await probe(sb, client.ns, 'tcp', cip, 81, { timeoutMs: 800 })).ok).toBe(false);
    expect(await sb.ping(client.ns, cip)).toBe(false);
    expect(await sb.ping(client.ns, '10.91.1.1')).toBe(true); // the gateway is the host's own address
  });

  it('routed mode: the published container port and ICMP are reachable directly, nothing else', async () => {
    const cip = await addr('rtnet', 'b');
    const direct = await probe(sb, client.ns, 'tcp', cip, 80);
    expect(direct.ok).toBe(true);
    expect(direct.peer).toBe(client.ip);
    expect(await sb.ping(client.ns, cip)).toBe(true);
    expect((await probe(sb, client.ns, 'tcp', cip, 81, { timeoutMs: 800 })).ok).toBe(false);
  });

  it('a trusted interface may reach published container ports directly, still not unpublished ones', async () => {
    const cip = await addr('trusted', 'c');
    expect((await probe(sb, client.ns, 'tcp', cip, 80)).ok).toBe(true);
    expect((await probe(sb, client.ns, 'tcp', cip, 81, { timeoutMs: 800 })).ok).toBe(false);
  });

  it('an endpoint of another network reaches a published port through the host address, not directly', async () => {
    const cip = await addr('natnet', 'a');
    const viaHost = await probe(sb, 'nb', 'tcp', client.hostIp, 8091);
    expect(viaHost.ok).toBe(true);
    expect((await probe(sb, 'nb', 'tcp', cip, 80, { timeoutMs: 800 })).ok).toBe(false);
  });

  it('adding and removing an endpoint without ports leaves the rules alone', async () => {
    const rules = async () => (backend === 'iptables' ? (await sb.sh('iptables-save -t raw | grep "^-A"')).stdout : await sb.rulesText());
    const before = await rules();
    const r = await sb.brnetOk(['endpoint', 'add', 'natnet', 'quiet', '--netns', 'nq', '--create-netns', '--debug']);
    expect(r.stderr).not.toMatch(backend === 'iptables' ? /iptables-restore/ : /\+ nft /);
    expect(await rules()).toBe(before);
    await sb.brnetOk(['endpoint', 'rm', 'natnet', 'quiet']);
    expect(await rules()).toBe(before);
  });
});
}
