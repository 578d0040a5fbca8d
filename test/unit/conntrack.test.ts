import { describe, expect, it } from 'vitest';
import { parseConntrackList } from '../../src/net/conntrack.ts';

describe('conntrack listings', () => {
  it('reads `conntrack -L` and /proc/net/nf_conntrack lines alike', () => {
    const tool = 'udp      17 29 src=198.18.0.2 dst=198.18.0.1 sport=5000 dport=8080 [UNREPLIED] src=198.18.0.1 dst=198.18.0.2 sport=8080 dport=5000 mark=0 use=1';
    const proc = 'ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.0.0.1 sport=40000 dport=80 src=10.0.0.1 dst=10.0.0.2 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2';
    const proc6 = 'ipv6     10 tcp      6 117 TIME_WAIT src=fd98:0000:0000:0000:0000:0000:0000:0002 dst=fd98:0000:0000:0000:0000:0000:0000:0001 sport=1 dport=9000 src=x dst=y sport=9000 dport=1 mark=0 zone=0 use=2';
    expect(parseConntrackList([tool, proc, proc6, ''].join('\n'))).toEqual([
      { proto: 'udp', dst: '198.18.0.1', dport: 8080 },
      { proto: 'tcp', dst: '10.0.0.1', dport: 80 },
      { proto: 'tcp', dst: 'fd98::1', dport: 9000 },
    ]);
  });
});
