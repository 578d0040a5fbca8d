// Kernel steps that remove an endpoint. Shared by `endpoint rm` and `network rm --force`.
// Removal tolerates objects that disappeared behind brnet's back (a namespace deleted by its
// owner takes the veth with it): the goal is the state, not the journey.
import { run } from '../net/exec.ts';
import type { HostView } from '../net/host.ts';
import type { Endpoint, Network, State } from '../state/schema.ts';
import type { Step } from './plan.ts';

const gone = (stderr: string) => /Cannot find device|No such file|does not exist|Invalid argument/i.test(stderr);

export function endpointRemoveSteps(_n: Network, ep: Endpoint, host: HostView, next: State): Step[] {
  const steps: Step[] = [];
  if (host.links.has(ep.hostIfname)) {
    steps.push({
      show: [`ip link del dev ${ep.hostIfname}`],
      async do() {
        const r = await run(['ip', 'link', 'del', 'dev', ep.hostIfname], { allowFail: true });
        if (r.code !== 0 && !gone(r.stderr)) await run(['ip', 'link', 'del', 'dev', ep.hostIfname]);
      },
    });
  }
  const stillUsed = next.networks.some((n) => n.endpoints.some((e) => e.netnsPath === ep.netnsPath));
  if (ep.netnsCreated && !stillUsed) {
    steps.push({
      show: [`ip netns del ${ep.netns}`],
      async do() {
        const r = await run(['ip', 'netns', 'del', ep.netns], { allowFail: true });
        if (r.code !== 0 && !gone(r.stderr)) await run(['ip', 'netns', 'del', ep.netns]);
      },
    });
  }
  return steps;
}
