// The completion scripts are generated from the real command tree: every noun, verb and
// option must be in them, bash must accept them, and completing must give the right words.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.ts';
import { HINTS, completionScript } from '../../src/commands/completion.ts';
import { completionModel } from '../../src/ui/completion.ts';

const program = buildProgram();
const bash = completionScript('bash', program, '1.2.3');
const zsh = completionScript('zsh', program, '1.2.3');

/** Every command of the tree with its path, e.g. ['network', 'create']. */
function allCommands(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return [{ path, cmd }, ...cmd.commands.flatMap((c) => allCommands(c, [...path, c.name()]))];
}

/** The body of the `case` branch of one command path in _brnet_spec. */
function specBranch(script: string, path: string): string {
  const start = script.indexOf(`\n        '${path}')\n`);
  expect(start, `no case branch for '${path}'`).toBeGreaterThan(0);
  return script.slice(start, script.indexOf(';;', start));
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('completion model', () => {
  it('covers the whole command tree', () => {
    const paths = completionModel(program).map((c) => c.path);
    expect(paths).toEqual(allCommands(program).map((c) => c.path.join(' ')));
    for (const noun of ['network', 'endpoint', 'port', 'config', 'restore', 'check', 'explain', 'doctor', 'reset', 'batch', 'completion', 'version']) {
      expect(paths).toContain(noun);
    }
  });

  it('knows which positional arguments take existing names', () => {
    const kinds = Object.fromEntries(completionModel(program, HINTS).map((c) => [c.path, c.args.map((a) => `${a.kind}${a.variadic ? '...' : ''}`)]));
    expect(kinds['network create']).toEqual(['none']); // a new name
    expect(kinds['network rm']).toEqual(['network...']);
    expect(kinds['network inspect']).toEqual(['network...']);
    expect(kinds['endpoint add']).toEqual(['network', 'none']);
    expect(kinds['endpoint rm']).toEqual(['network', 'endpoint...']);
    expect(kinds['endpoint ls']).toEqual(['network']);
    expect(kinds['endpoint inspect']).toEqual(['network', 'endpoint']);
    expect(kinds['endpoint link']).toEqual(['network', 'endpoint', 'endpoint', 'none...']);
    expect(kinds['endpoint unlink']).toEqual(['network', 'endpoint', 'endpoint', 'none...']);
    expect(kinds['port publish']?.slice(0, 2)).toEqual(['network', 'endpoint']);
    expect(kinds['port unpublish']?.slice(0, 2)).toEqual(['network', 'endpoint']);
    expect(kinds['port ls']).toEqual(['network', 'endpoint']);
    expect(kinds['batch']).toEqual(['file']);
    expect(kinds['completion']).toEqual(['choice']);
    expect(kinds['config set']).toEqual(['choice', 'none']);
  });
});

describe.each([
  ['bash', bash],
  ['zsh', zsh],
])('%s script', (shell, script) => {
  it('names every noun, verb, alias and option (long and short) under its command', () => {
    for (const { path, cmd } of allCommands(program)) {
      const branch = specBranch(script, path.join(' '));
      for (const sub of cmd.commands) {
        for (const name of [sub.name(), ...sub.aliases()]) {
          expect(branch, `${shell}: '${path.join(' ')}' lacks sub-command ${name}`).toMatch(new RegExp(`[ '(]${name}[ ':)]`));
        }
      }
      const words = [...cmd.options.flatMap((o) => [o.long, o.short]), '--help', '-h'].filter((w): w is string => Boolean(w));
      for (const w of words) {
        expect(branch, `${shell}: '${path.join(' ')}' lacks option ${w}`).toMatch(new RegExp(`[ '(]${w}[ ':)]`));
      }
    }
  });

  it('offers choices: gateway modes, shells, setting keys', () => {
    expect(script).toMatch(/'nat'? '?nat-unprotected'? '?routed'? '?isolated'/);
    expect(script).toMatch(/'bash'? '?zsh'/);
    expect(script).toContain('default-address-pools');
  });

  it('looks names up with brnet itself', () => {
    expect(script).toContain('command brnet "${sd[@]}" network ls -q 2>/dev/null');
    expect(script).toContain('command brnet "${sd[@]}" endpoint ls -q "$2" 2>/dev/null');
  });
});

describe('bash script', () => {
  let dir: string;
  beforeAll(() => {
    // A stub `brnet` that records its arguments and knows two networks and two endpoints.
    dir = mkdtempSync(join(tmpdir(), 'brnet-completion-'));
    writeFileSync(
      join(dir, 'brnet'),
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\ncase "$*" in\n  *"network ls -q") printf 'web\\ndb\\n' ;;\n  *"endpoint ls -q web") printf 'app\\napi\\n' ;;\nesac\n`,
    );
    chmodSync(join(dir, 'brnet'), 0o755);
    writeFileSync(join(dir, 'brnet.bash'), bash);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Completes `words` (the last one is the word under the cursor) as bash would. */
  function complete(...words: string[]): string[] {
    const script =
      `source ${dir}/brnet.bash\n` +
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}\n` +
      `_brnet; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script], {
      encoding: 'utf8',
      env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout.split('\n').filter(Boolean);
  }
  const calls = () => {
    try {
      return readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };

  it('passes bash -n', () => {
    const r = spawnSync('bash', ['-n'], { input: bash, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('completes nouns, verbs and options', () => {
    expect(complete('brnet', '')).toEqual(['network', 'endpoint', 'port', 'config', 'restore', 'check', 'explain', 'doctor', 'reset', 'batch', 'completion', 'rootless', 'version']);
    expect(complete('brnet', 'e')).toEqual(['endpoint', 'explain']);
    expect(complete('brnet', 'network', '')).toEqual(['create', 'rm', 'remove', 'ls', 'list', 'inspect', 'prune']);
    expect(complete('brnet', 'network', 'create', 'x', '--no-')).toEqual(['--no-color', '--no-ipv4', '--no-icc', '--no-masquerade']);
    expect(complete('brnet', '--json', 'network', 'ls', '--st')).toEqual(['--state-dir']);
  });

  it('completes option values from their choices, also as --opt=value', () => {
    expect(complete('brnet', 'network', 'create', 'x', '--gateway-mode-ipv4', '')).toEqual(['nat', 'nat-unprotected', 'routed', 'isolated']);
    expect(complete('brnet', 'network', 'create', 'x', '--gateway-mode-ipv6', '=', 'r')).toEqual(['routed']);
    expect(complete('brnet', 'network', 'create', 'x', '--gateway-mode-ipv6=r')).toEqual(['--gateway-mode-ipv6=routed']);
    expect(complete('brnet', 'completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('brnet', 'config', 'set', 'ip')).toEqual(['iptables', 'ip6tables', 'ip-forward']);
  });

  it('completes existing networks and endpoints where a command takes them', () => {
    expect(complete('brnet', 'network', 'rm', '')).toEqual(['web', 'db']);
    expect(complete('brnet', 'network', 'remove', '-f', 'web', 'd')).toEqual(['db']);
    expect(complete('brnet', 'network', 'create', '')).toEqual([]); // a new name
    expect(complete('brnet', 'endpoint', 'rm', 'web', '')).toEqual(['app', 'api']);
    expect(complete('brnet', 'port', 'publish', 'web', 'ap')).toEqual(['app', 'api']);
    expect(complete('brnet', 'endpoint', 'add', 'web', '')).toEqual([]); // a new name
    expect(calls()).toContain('network ls -q');
    expect(calls()).toContain('endpoint ls -q web');
  });

  it('skips option values and passes --state-dir on to the lookups', () => {
    expect(complete('brnet', 'network', 'create', 'x', '--subnet', '10.1.0.0/24', '--label', 'a', '=', 'b', '--int')).toEqual(['--internal']);
    expect(complete('brnet', '--state-dir', '/tmp/sd', 'endpoint', 'inspect', '')).toEqual(['web', 'db']);
    expect(complete('brnet', '--state-dir', '=', '/tmp/sd2', 'endpoint', 'inspect', 'web', '')).toEqual(['app', 'api']);
    expect(calls()).toContain('--state-dir /tmp/sd network ls -q');
    expect(calls()).toContain('--state-dir /tmp/sd2 endpoint ls -q web');
  });
});

// zsh is not needed to use brnet; CI installs it (.ci/run) so that this check always runs there.
describe.skipIf(!has('zsh') && !process.env.CI)('zsh script', () => {
  it('passes zsh -n and registers itself when sourced after compinit', () => {
    const n = spawnSync('zsh', ['-n'], { input: zsh, encoding: 'utf8' });
    expect(n.stderr).toBe('');
    expect(n.status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'brnet-zsh-'));
    try {
      writeFileSync(join(dir, '_brnet'), zsh);
      const r = spawnSync('zsh', ['-f', '-c', `autoload -U compinit; compinit -u -D; source ${dir}/_brnet; print -r -- $_comps[brnet]`], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: dir },
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('_brnet');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
