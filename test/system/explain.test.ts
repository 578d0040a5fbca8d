// `brnet explain` against measured traffic: for every probe of the reachability matrix, the
// verdict (and where the packet ends up) equals what the packet really did, with both
// firewall backends. Every brnet call runs in a sandbox.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BACKENDS, type OutsideClient, Sandbox, describeRoot } from '../helpers/sandbox.ts';
import { probe, startEcho } from '../helpers/traffic.ts';

for (const backend of BACKENDS) {
  describeRoot(`explain agrees with traffic (${backend})`, () => {
    let sb: Sandbox;
    let client: OutsideClient;
    const ip: Record<string, string> = {};
    const ns: Record<string, string> = {};

    const explain = async (from: string, to: string) => {
      const r = await sb.brnet(['explain', '--from', from, '--to', to, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return r.json();
    };
    /** The measured result and explain's answer for one probe: reached = the echo of `target` answered. */
    async function both(from: string, fromNs: string | null, to: string, dst: string, port: number, proto: 'tcp' | 'udp', target: string) {
      const measured = await probe(sb, fromNs, proto, dst, port, { timeoutMs: 1000 });
      const e = await explain(from, to);
      return { measured: measured.ok, said: e.verdict === 'allowed' && e.reaches === target, e, peer: measured.peer };
    }

    beforeAll(async () => {
      sb = await Sandbox.create({ backend });
      client = await sb.addOutsideClient('client', { v6: true });
      const nets: [string, ...string[]][] = [
        ['web', '--subnet', '10.81.0.0/24'],
        ['quiet', '--subnet', '10.82.0.0/24', '--no-icc'],
        ['intern', '--subnet', '10.83.0.0/24', '--internal'],
        ['other', '--subnet', '10.84.0.0/24'],
        ['routed', '--subnet', '10.85.0.0/24', '--gateway-mode-ipv4', 'routed'],
        ['nomasq', '--subnet', '10.86.0.0/24', '--no-masquerade'],
      ];
      for (const [name, ...opts] of nets) await sb.brnetOk(['network', 'create', name, ...opts]);
      const eps: [string, string, ...string[]][] = [
        ['web', 'a', '-p', '8080:80', '-p', '127.0.0.1:8081:80', '-p', '5353:53/udp'],
        ['web', 'b'],
        ['quiet', 'c'],
        ['quiet', 'd'],
        ['intern', 'e'],
        ['intern', 'f'],
        ['other', 'g'],
        ['routed', 'r'],
        ['nomasq', 'm'],
      ];
      for (const [net, name, ...opts] of eps) {
        const j = (await sb.brnetOk(['endpoint', 'add', net, name, '--netns', `ns${name}`, '--create-netns', ...opts, '--json'])).json();
        ip[name] = String(j.ipv4).split('/')[0] as string;
        ns[name] = `ns${name}`;
        await startEcho(sb, ns[name] as string, 'tcp', 80);
      }
      await sb.brnetOk(['network', 'create', 'six', '--ipv6', '--subnet', 'fd87::/64', '--subnet', '10.87.0.0/24']);
      const six = (await sb.brnetOk(['endpoint', 'add', 'six', 's', '--netns', 'nss', '--create-netns', '-p', '8090:80', '--json'])).json();
      ip.s6 = String(six.ipv6).split('/')[0] as string;
      await startEcho(sb, 'nss', 'tcp', 80, { v6: true });
      await startEcho(sb, 'nsa', 'udp', 53);
      await startEcho(sb, client.ns, 'tcp', 80);
    }, 120_000);
    afterAll(async () => {
      await sb?.destroy();
    });

    it('between endpoints: same network, ICC off, other networks, internal', async () => {
      const cases = [
        ['web/b', 'nsb', 'web/a:80', ip.a, 'web/a', true],
        ['quiet/c', 'nsc', 'quiet/d:80', ip.d, 'quiet/d', false],
        ['web/a', 'nsa', 'other/g:80', ip.g, 'other/g', false],
        ['intern/e', 'nse', 'intern/f:80', ip.f, 'intern/f', true],
        ['intern/e', 'nse', `${client.ip}:80`, client.ip, client.ip, false],
        ['web/b', 'nsb', 'intern/e:80', ip.e, 'intern/e', false],
      ] as const;
      for (const [from, fromNs, to, dst, target, expected] of cases) {
        const r = await both(from, fromNs, to, dst as string, 80, 'tcp', target);
        expect(r.measured, `${from} -> ${to} measured`).toBe(expected);
        expect(r.said, `${from} -> ${to}: ${JSON.stringify(r.e)}`).toBe(r.measured);
      }
      const icc = await explain('quiet/c', 'quiet/d:80');
      expect(icc.rules.at(-1)).toMatchObject({ table: 'filter', chain: 'BRNET-FORWARD', owner: 'quiet' });
      expect(icc.rules.at(-1).rule).toMatch(/-j DROP$/);
    });

    it('published ports from outside, from the host, loopback-only, hairpin, another network via the host address', async () => {
      const cases = [
        [client.ip, client.ns, `${client.hostIp}:8080`, client.hostIp, 8080, 'tcp', 'web/a', true],
        [client.ip, client.ns, `${client.hostIp}:5353/udp`, client.hostIp, 5353, 'udp', 'web/a', true],
        [client.ip, client.ns, 'web/a:80', ip.a, 80, 'tcp', 'web/a', false],
        ['host', null, '127.0.0.1:8081', '127.0.0.1', 8081, 'tcp', 'web/a', true],
        [client.ip, client.ns, `${client.hostIp}:8081`, client.hostIp, 8081, 'tcp', 'web/a', false],
        ['web/a', 'nsa', `${client.hostIp}:8080`, client.hostIp, 8080, 'tcp', 'web/a', true],
        ['web/b', 'nsb', `${client.hostIp}:8080`, client.hostIp, 8080, 'tcp', 'web/a', true],
        ['other/g', 'nsg', `${client.hostIp}:8080`, client.hostIp, 8080, 'tcp', 'web/a', true],
        ['host', null, 'web/a:80', ip.a, 80, 'tcp', 'web/a', true],
      ] as const;
      for (const [from, fromNs, to, dst, port, proto, target, expected] of cases) {
        const r = await both(from, fromNs, to, dst as string, port, proto, target);
        expect(r.measured, `${from} -> ${to} measured`).toBe(expected);
        expect(r.said, `${from} -> ${to}: ${JSON.stringify(r.e)}`).toBe(r.measured);
      }
      const pub = await explain(client.ip, `${client.hostIp}:8080`);
      expect(pub.nat[0]).toMatchObject({ type: 'dnat', to: `${ip.a}:80`, owner: 'web:a' });
      const direct = await explain(client.ip, 'web/a:80');
      expect(direct.rules.at(-1)).toMatchObject({ table: 'raw', owner: 'web' });
    });

    it('IPv6: a published port from outside, and direct access to the endpoint', async () => {
      const pub = await both(client.ip6, client.ns, `[${client.hostIp6}]:8090`, client.hostIp6, 8090, 'tcp', 'six/s');
      expect([pub.measured, pub.said]).toEqual([true, true]);
      expect(pub.e.nat[0]).toMatchObject({ type: 'dnat', to: `[${ip.s6}]:80` });
      const direct = await both(client.ip6, client.ns, 'six/s:80', ip.s6 as string, 80, 'tcp', 'six/s');
      expect([direct.measured, direct.said]).toEqual([false, false]);
    });

    it('routed access with nothing published, and masquerade on and off as the outside sees it', async () => {
      const tcp = await both(client.ip, client.ns, 'routed/r:80', ip.r as string, 80, 'tcp', 'routed/r');
      expect(tcp.measured).toBe(false);
      expect(tcp.said).toBe(false);
      const pinged = await sb.ping(client.ns, ip.r as string);
      const ping = await explain(client.ip, 'routed/r');
      expect(pinged).toBe(true);
      expect(ping.verdict === 'allowed' && ping.reaches === 'routed/r').toBe(pinged);
      // masquerade: the client sees the host's address; without, the endpoint's own
      const web = await both('web/b', 'nsb', `${client.ip}:80`, client.ip, 80, 'tcp', client.ip);
      expect([web.measured, web.said]).toEqual([true, true]);
      expect(web.peer).toContain(client.hostIp);
      expect(web.e.nat.map((n: any) => n.type)).toEqual(['masquerade']);
      // without masquerade the request leaves with the endpoint's own address, and the answer
      // to that address is dropped in raw PREROUTING (direct access to a nat network)
      const m = await both('nomasq/m', 'nsm', `${client.ip}:80`, client.ip, 80, 'tcp', client.ip);
      expect([m.measured, m.said]).toEqual([false, false]);
      expect(m.e.nat).toEqual([]);
      expect(m.e.verdict).toBe('blocked');
      expect(m.e.reason).toMatch(/^the reply \(not masqueraded\) is dropped in raw PREROUTING/);
    });

    it('after unpublish the port leads nowhere; a foreign rule first makes it unknown; bad input is 2, unknown names 3', async () => {
      await sb.brnetOk(['port', 'unpublish', 'web', 'a', '8080:80']);
      const r = await both(client.ip, client.ns, `${client.hostIp}:8080`, client.hostIp, 8080, 'tcp', 'web/a');
      expect([r.measured, r.said]).toEqual([false, false]);
      expect(r.e.reaches).toBe('host');
      await sb.sh('iptables -I FORWARD 1 -s 192.0.2.0/24 -j DROP');
      const u = await explain('web/b', `${client.ip}:80`);
      expect(u.verdict).toBe('unknown');
      expect(u.reason).toContain('-A FORWARD -s 192.0.2.0/24 -j DROP');
      await sb.sh('iptables -D FORWARD -s 192.0.2.0/24 -j DROP');
      expect((await sb.brnet(['explain', '--from', 'web/zz', '--to', 'web/a:80'])).code).toBe(3);
      expect((await sb.brnet(['explain', '--from', 'nonet/a', '--to', 'web/a:80'])).code).toBe(3);
      for (const bad of ['web/a:99999', 'web/a:80/xyz', 'not an ip', 'web/a/tcp', '10.0.0.1:80/icmp']) {
        const b = await sb.brnet(['explain', '--from', 'web/b', '--to', bad]);
        expect(b.code, bad).toBe(2);
      }
      expect((await sb.brnet(['explain', '--from', 'web/b'])).code).toBe(2);
    });
  });
}
