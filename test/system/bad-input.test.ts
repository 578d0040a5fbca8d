// The bad-input corpus: every invalid invocation gets one clear line on stderr (plus at most
// a hint), the exit code of product.md, no stack trace, and changes nothing at all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, describeRoot } from '../helpers/sandbox.ts';

let sb: Sandbox;

const USAGE = 2;
const NOT_FOUND = 3;
const CONFLICT = 4;

// [argv, exit code]
const corpus: [string[], number][] = [
  // names
  [['network', 'create', 'has space'], USAGE],
  [['network', 'create', '-leadingdash'], USAGE],
  [['network', 'create', '.dot'], USAGE],
  [['network', 'create', 'a/b'], USAGE],
  [['network', 'create', 'x'.repeat(65)], USAGE],
  [['network', 'create', 'ünïcode'], USAGE],
  [['network', 'create', 'semi;colon'], USAGE],
  [['network', 'create', '$(touch /tmp/pwned)'], USAGE],
  // CIDRs
  [['network', 'create', 'n1', '--subnet', '10.1.0.1/24'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/33'], USAGE],
  [['network', 'create', 'n1', '--subnet', '300.1.0.0/16'], USAGE],
  [['network', 'create', 'n1', '--subnet', 'fd00::1/64'], USAGE],
  [['network', 'create', 'n1', '--subnet', 'ff02::/64'], USAGE],
  [['network', 'create', 'n1', '--subnet', 'fe80::/10'], USAGE],
  // subnets no bridge can serve
  [['network', 'create', 'n1', '--subnet', '0.0.0.0/0'], USAGE],
  [['network', 'create', 'n1', '--subnet', '0.0.0.0/8'], USAGE],
  [['network', 'create', 'n1', '--subnet', '127.0.0.0/8'], USAGE],
  [['network', 'create', 'n1', '--subnet', '127.1.0.0/24'], USAGE],
  [['network', 'create', 'n1', '--subnet', '224.1.0.0/16'], USAGE],
  [['network', 'create', 'n1', '--subnet', '240.0.0.0/4'], USAGE],
  [['network', 'create', 'n1', '--subnet', '255.255.255.255/32'], USAGE],
  [['network', 'create', 'n1', '--ipv6', '--subnet', '::1/128'], USAGE],
  [['network', 'create', 'n1', '--ipv6', '--subnet', '::/0'], USAGE],
  // addresses that are not unicast where brnet sends from
  [['network', 'create', 'n1', '--snat-ipv4', '224.0.0.1'], USAGE],
  [['network', 'create', 'n1', '--snat-ipv4', '0.0.0.0'], USAGE],
  [['network', 'create', 'n1', '--snat-ipv4', '255.255.255.255'], USAGE],
  [['network', 'create', 'n1', '--ipv6', '--snat-ipv6', 'ff02::1'], USAGE],
  [['network', 'create', 'n1', '--host-binding-ip', '239.1.1.1'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--subnet', '10.2.0.0/24'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--ip-range', '10.2.0.0/25'], USAGE],
  [['network', 'create', 'n1', '--ip-range', '10.2.0.0/25'], USAGE],
  // IPs
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--gateway', '10.1.1.1'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--gateway', 'gateway'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--aux-address', 'r=10.9.9.9'], USAGE],
  [['network', 'create', 'n1', '--subnet', '10.1.0.0/24', '--aux-address', 'noequals'], USAGE],
  [['network', 'create', 'n1', '--host-binding-ip', '1.2.3.4.5'], USAGE],
  [['network', 'create', 'n1', '--snat-ipv4', '::1'], USAGE],
  [['network', 'create', 'n1', '--snat-ipv6', '10.0.0.1'], USAGE],
  // MTU
  [['network', 'create', 'n1', '--mtu', '0'], USAGE],
  [['network', 'create', 'n1', '--mtu', '67'], USAGE],
  [['network', 'create', 'n1', '--mtu', '65536'], USAGE],
  [['network', 'create', 'n1', '--mtu', '1500.5'], USAGE],
  [['network', 'create', 'n1', '--mtu', '-1'], USAGE],
  [['network', 'create', 'n1', '--ipv6', '--mtu', '1279'], USAGE],
  // options and modes
  [['network', 'create', 'n1', '-o', 'com.docker.network.bridge.nope=1'], USAGE],
  [['network', 'create', 'n1', '-o', 'bridge.name'], USAGE],
  [['network', 'create', 'n1', '-o', 'com.docker.network.bridge.enable_icc=yes'], USAGE],
  [['network', 'create', 'n1', '-o', 'com.docker.network.driver.mtu=big'], USAGE],
  [['network', 'create', 'n1', '--gateway-mode-ipv4', 'bridged'], USAGE],
  [['network', 'create', 'n1', '--gateway-mode-ipv6', 'isolated', '--ipv6'], USAGE],
  [['network', 'create', 'n1', '--bridge-name', 'this-is-16-chars'], USAGE],
  [['network', 'create', 'n1', '--bridge-name', 'br:0'], USAGE],
  // words of iptables and `ip -batch`: a wildcard, a comment, a quote, a leading dash, a bell
  [['network', 'create', 'n1', '--bridge-name', '+'], USAGE],
  [['network', 'create', 'n1', '--bridge-name', 'br#x'], USAGE],
  [['network', 'create', 'n1', '--bridge-name', "br'x"], USAGE],
  [['network', 'create', 'n1', '--bridge-name', '-br'], USAGE],
  [['network', 'create', 'n1', '--bridge-name', 'br\u0007'], USAGE],
  [['network', 'create', 'n1', '--trusted-interface', 'eth+'], USAGE],
  [['network', 'create', 'n1', '--iface-prefix', 'e#'], USAGE],
  [['network', 'create', 'n1', '--iface-prefix', 'e/'], USAGE],
  [['network', 'create', 'n1', '--no-ipv4'], USAGE],
  [['network', 'create', 'n1', '--label', 'novalue'], USAGE],
  [['network', 'create', 'n1', '--frobnicate'], USAGE],
  // missing / extra arguments, unknown commands
  [['network', 'create'], USAGE],
  [['network', 'rm'], USAGE],
  [['network', 'inspect'], USAGE],
  [['network', 'ls', 'extra'], USAGE],
  [['network'], USAGE],
  [['nettwork', 'ls'], USAGE],
  [['network', 'delete', 'web'], USAGE],
  [['config', 'set', 'iptables'], USAGE],
  [['config', 'set', 'iptables', 'maybe'], USAGE],
  [['config', 'set', 'nosuch', '1'], USAGE],
  [['config', 'set', 'default-address-pools', '10.0.0.0/8'], USAGE],
  [['batch', '/nonexistent/file'], USAGE],
  // conflicts and unknown objects
  [['network', 'create', 'web'], CONFLICT],
  [['network', 'create', 'n1', '--subnet', '10.88.0.0/16'], CONFLICT],
  [['network', 'create', 'n1', '--bridge-name', 'brweb'], CONFLICT],
  [['network', 'create', 'web', '--if-not-exists', '--internal'], CONFLICT],
  [['network', 'rm', 'web'], CONFLICT],
  [['network', 'rm', 'nosuch'], NOT_FOUND],
  [['network', 'inspect', 'nosuch'], NOT_FOUND],
  // endpoints
  [['endpoint', 'add', 'nosuch', 'e1', '--netns', 'appns'], NOT_FOUND],
  [['endpoint', 'add', 'web', 'app', '--netns', 'appns'], CONFLICT],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'missingns'], NOT_FOUND],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ip', '10.88.0.2'], CONFLICT],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ip', '10.88.0.1'], CONFLICT],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ip', '10.99.0.2'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ip', 'fd88::5'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ip', 'not-an-ip'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--mac', '01:00:5e:00:00:01'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--mac', 'zz:zz'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '--ifname', 'waytoolonginterfacename'], USAGE],
  [['endpoint', 'add', 'web', 'bad name', '--netns', 'appns'], USAGE],
  [['endpoint', 'add', 'web', 'e1'], USAGE],
  [['endpoint', 'add', 'web', 'e1', '--netns', 'appns', '-p', '99999:80'], USAGE],
  [['endpoint', 'rm', 'web', 'nosuch'], NOT_FOUND],
  [['endpoint', 'rm', 'nosuch', 'app'], NOT_FOUND],
  [['endpoint', 'inspect', 'web', 'nosuch'], NOT_FOUND],
  [['endpoint', 'ls', 'nosuch'], NOT_FOUND],
  // ports
  [['port', 'publish', 'web', 'app', '8080:80'], CONFLICT],
  [['port', 'publish', 'web', 'app', '0:80'], USAGE],
  [['port', 'publish', 'web', 'app', '70000:80'], USAGE],
  [['port', 'publish', 'web', 'app', '8081:80/icmp'], USAGE],
  [['port', 'publish', 'web', 'app', '8000-8002:80-81'], USAGE],
  [['port', 'publish', 'web', 'app', '9000-8000:80'], USAGE],
  [['port', 'publish', 'web', 'app', '1.2.3:8081:80'], USAGE],
  [['port', 'publish', 'web', 'app', 'abc'], USAGE],
  [['port', 'publish', 'web', 'app', ''], USAGE],
  [['port', 'publish', 'web', 'app'], USAGE],
  [['port', 'publish', 'web', 'nosuch', '8081:80'], NOT_FOUND],
  [['port', 'publish', 'nosuch', 'app', '8081:80'], NOT_FOUND],
  [['port', 'publish', 'int', 'iep', '8081:80'], CONFLICT],
  [['port', 'unpublish', 'web', 'app', '9999'], NOT_FOUND],
  [['port', 'ls', 'nosuch'], NOT_FOUND],
];

describeRoot('bad input corpus', () => {
  beforeAll(async () => {
    sb = await Sandbox.create();
    await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.88.0.0/24', '--bridge-name', 'brweb']);
    await sb.brnetOk(['network', 'create', 'int', '--internal', '--subnet', '10.89.0.0/24']);
    await sb.brnetOk(['endpoint', 'add', 'web', 'app', '--netns', 'appns', '--create-netns', '-p', '8080:80']);
    await sb.brnetOk(['endpoint', 'add', 'int', 'iep', '--netns', 'intns', '--create-netns']);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it(`has at least 60 cases (${corpus.length})`, () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
  });

  it('each case: its exit code, one line (and a hint), no stack trace, nothing changed', async () => {
    const file = join(sb.stateDir, 'state.json');
    const snap = async () => ({
      state: readFileSync(file, 'utf8'),
      links: (await sb.sh('ip -br link; ip -br addr; for n in $(ip netns list | cut -d" " -f1); do ip -n $n -br addr; done')).stdout,
      v4: await sb.iptablesSave(4),
      v6: await sb.iptablesSave(6),
    });
    const before = await snap();
    const failures: string[] = [];
    for (const [argv, code] of corpus) {
      const r = await sb.brnet(argv);
      const lines = r.stderr.trimEnd().split('\n');
      const okShape =
        lines[0]?.startsWith('brnet: ') && lines.length <= 2 && (lines.length === 1 || lines[1]?.startsWith('hint: ')) && !/\n\s+at /.test(r.stderr);
      if (r.code !== code || !okShape || r.stdout !== '') {
        failures.push(`${JSON.stringify(argv)} -> exit ${r.code} (want ${code}), stderr: ${JSON.stringify(r.stderr)}, stdout: ${JSON.stringify(r.stdout.slice(0, 80))}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await snap()).toEqual(before);
    expect((await sb.sh('test -e /tmp/pwned && echo yes || echo no')).stdout.trim()).toBe('no');
  });
});
