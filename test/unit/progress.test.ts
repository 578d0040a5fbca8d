// The progress line's count: a plan's steps, told as each one starts, as data.
import { describe, expect, it } from 'vitest';
import type { Operation, Plan } from '../../src/core/runner.ts';
import type { Step } from '../../src/plan/steps.ts';
import { counted } from '../../src/ui/progress.ts';
import { emptyState } from '../../src/state/schema.ts';
import type { Host } from '../../src/core/host.ts';

const log: string[] = [];
const step = (name: string, irreversible = false): Step => ({
  show: [`do ${name}`],
  do: async () => void log.push(name),
  undo: async () => void log.push(`undo ${name}`),
  ...(irreversible ? { irreversible } : {}),
});

function op(plan: Partial<Plan<string>>): Operation<string> {
  return { what: 'remove networks a, b', plan: async () => ({ state: null, steps: [], result: 'r', ...plan }) };
}

async function run(o: Operation<string>): Promise<{ texts: string[]; plan: Plan<string> }> {
  const texts: string[] = [];
  const plan = await counted(o, { text: (t) => texts.push(t), stop() {} }).plan(emptyState(), {} as Host);
  log.length = 0;
  for (const s of [...plan.steps, ...(plan.afterFirewall ?? []), ...(plan.atEnd ?? []), ...(plan.parts ?? []).flatMap((p) => p.steps)]) await s.do();
  return { texts, plan };
}

describe('counted', () => {
  it('tells N/M as each step starts, over steps, afterFirewall, atEnd and parts', async () => {
    const { texts, plan } = await run(op({ steps: [step('a'), step('b', true)], afterFirewall: [step('c')], parts: [{ what: 'network web', steps: [step('d')] }] }));
    expect(texts).toEqual(['1/4 remove networks a, b', '2/4 remove networks a, b', '3/4 remove networks a, b', '4/4 network web (remove networks a, b)']);
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    // the steps are the same otherwise: what they show, undo, irreversible
    expect(plan.steps.map((s) => s.show)).toEqual([['do a'], ['do b']]);
    expect(plan.steps.map((s) => Boolean(s.irreversible))).toEqual([false, true]);
    await plan.steps[0]!.undo!();
    expect(log.at(-1)).toBe('undo a');
    expect(plan.result).toBe('r');
  });

  it('a plan of fewer than 2 steps is left as it is', async () => {
    const one = step('a');
    const { texts, plan } = await run(op({ steps: [one] }));
    expect(plan.steps[0]).toBe(one);
    expect(texts).toEqual([]);
  });
});
