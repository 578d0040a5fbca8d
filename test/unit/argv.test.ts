// What main() reads from the command line before commander: `help NOUN VERB` and habits.
import { describe, expect, it } from 'vitest';
import { habitError, helpAsFlag, helpPath } from '../../src/ui/argv.ts';

describe('help NOUN VERB', () => {
  it.each([
    [['help', 'network', 'create'], ['network', 'create', '--help']],
    [['--json', 'help', 'port', 'publish'], ['--json', 'port', 'publish', '--help']],
    [['--state-dir', 'help', 'help', 'network'], ['--state-dir', 'help', 'network', '--help']],
    [['help', 'network'], ['network', '--help']],
    [['help'], ['help']],
    [['network', 'help', 'create'], ['network', 'help', 'create']],
    [['network', 'create', 'help'], ['network', 'create', 'help']],
    [['--', 'help', 'network'], ['--', 'help', 'network']],
  ])('%j → %j', (args, out) => {
    expect(helpAsFlag(args)).toEqual(out);
  });

  it('the command path', () => {
    expect(helpPath(['--debug', 'help', 'endpoint', 'add'])).toEqual(['endpoint', 'add']);
    expect(helpPath(['help'])).toBeNull();
    expect(helpPath(['network', 'ls'])).toBeNull();
  });
});

describe('habits from elsewhere', () => {
  it.each([
    [['network', 'connect', 'web', 'c1'], /no `brnet network connect`/, /endpoint add/],
    [['--json', 'network', 'disconnect', 'web', 'c1'], /no `brnet network disconnect`/, /endpoint rm/],
    [['completion', 'fish'], /^no completion script for fish: brnet completes bash or zsh$/, /completion bash/],
  ])('%j is refused (2) with a hint', (args, message, hint) => {
    const e = habitError(args);
    expect(e?.exitCode).toBe(2);
    expect(e?.message).toMatch(message);
    expect(e?.hint).toMatch(hint);
  });

  it.each([[['network', 'ls']], [['completion', 'bash']], [['completion', 'zsh']], [['network', 'connect', '--help']], [['network']], [[]]])('%j is left to commander', (args) => {
    expect(habitError(args)).toBeNull();
  });
});
