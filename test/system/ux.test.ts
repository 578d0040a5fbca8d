// What a sysadmin sees: help, usage errors, JSON for scripts, tables with and without a
// terminal, the man page and the completion script. Every brnet call runs in a sandbox.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.ts';
import { BRNET_BIN, REPO_ROOT, Sandbox, describeRoot, shellQuote } from '../helpers/sandbox.ts';

const ESC = '\u001b';
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Every command of the tree: its argv path, and whether it is a leaf (it runs something). */
function commands(cmd: Command, path: string[] = []): { path: string[]; leaf: boolean; cmd: Command }[] {
  return [{ path, leaf: cmd.commands.length === 0, cmd }, ...cmd.commands.flatMap((c) => commands(c, [...path, c.name()]))];
}
const tree = commands(buildProgram());
const leaves = tree.filter((c) => c.leaf);

describeRoot('help, usage errors, JSON and tables', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await Sandbox.create();
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  it('every command has --help: usage, its summary, its options and, for the runnable ones, examples', async () => {
    expect(leaves.length).toBeGreaterThanOrEqual(18);
    for (const { path, leaf, cmd } of tree) {
      const r = await sb.brnet([...path, '--help']);
      const what = `brnet ${[...path, '--help'].join(' ')}`;
      expect(r.code, what).toBe(0);
      expect(r.stderr, what).toBe('');
      expect(r.stdout, what).toMatch(new RegExp(`^Usage: brnet${path.length ? ` ${path.join(' ')}` : ''}[ |]`));
      if (path.length) expect(r.stdout.replace(/\s+/g, ' '), what).toContain(cmd.description()); // help wraps at 80
      for (const o of cmd.options) expect(r.stdout, what).toContain(o.long!);
      for (const sub of cmd.commands) expect(r.stdout, what).toContain(sub.name());
      if (leaf || path.length === 0) expect(r.stdout, what).toMatch(/\nExamples:\n {2}brnet /);
      if (leaf) expect(r.stdout, what).toContain('Global Options:');
    }
    // defaults are shown
    const create = await sb.brnet(['network', 'create', '--help']);
    expect(create.stdout).toMatch(/--state-dir <dir>\s+state directory \(default: \/var\/lib\/brnet/);
    expect(create.stdout).toMatch(/--gateway-mode-ipv4 <mode>[\s\S]*\(default: nat\)/);
    expect(create.stdout).toMatch(/--mtu <n>[\s\S]*default: 1500/);
    // `brnet help <command>` is the same as `<command> --help`
    expect((await sb.brnet(['help', 'network'])).stdout).toBe((await sb.brnet(['network', '--help'])).stdout);
  });

  it('--version and `version` print the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect((await sb.brnetOk(['--version'])).stdout).toBe(`${version}\n`);
    expect((await sb.brnetOk(['version'])).stdout).toBe(`${version}\n`);
  });

  it('usage errors exit 2 with one line, the closest match as a hint, and change nothing', async () => {
    const cases: [string[], RegExp, string][] = [
      [['netwrk', 'ls'], /^brnet: unknown command 'netwrk'$/, 'hint: Did you mean network?'],
      [['network', 'lsit'], /^brnet: unknown command 'lsit'$/, 'hint: Did you mean list?'],
      [['network', 'create', 'x', '--subnt', '10.9.0.0/24'], /^brnet: unknown option '--subnt'$/, 'hint: Did you mean --subnet?'],
      [['endpoint', 'add', 'x', 'y', '--netns', 'ns', '--create-ns'], /^brnet: unknown option '--create-ns'$/, 'hint: Did you mean --create-netns?'],
      [['--jsn', 'network', 'ls'], /^brnet: unknown option '--jsn'$/, 'hint: Did you mean --json?'],
      [['completion', 'fish'], /^brnet: no completion script for fish: brnet completes bash or zsh$/, 'hint: brnet completion bash, or brnet completion zsh'],
      [['network', 'create'], /^brnet: missing required argument 'name'$/, ''],
      [['network', 'create', 'bad/name'], /^brnet: invalid network name "bad\/name"/, ''],
    ];
    for (const [args, first, hint] of cases) {
      const r = await sb.brnet(args);
      const lines = r.stderr.trimEnd().split('\n');
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(lines[0], args.join(' ')).toMatch(first);
      if (hint) expect(lines.slice(1), args.join(' ')).toEqual([hint]);
      else expect(lines.length, args.join(' ')).toBeLessThanOrEqual(2);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    // with --json, the same errors are one JSON document on stderr
    const j = await sb.brnet(['network', 'create', 'x', '--subnt', '10.9.0.0/24', '--json']);
    expect(j.code).toBe(2);
    expect(j.stdout).toBe('');
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'USAGE', message: "unknown option '--subnt'", exitCode: 2, hint: 'Did you mean --subnet?' } });
    expect(existsSync(join(sb.stateDir, 'state.json'))).toBe(false);
  });

  it('--json: network create, ls and inspect and config show carry the documented fields', async () => {
    const created = (await sb.brnetOk(['network', 'create', 'web', '--subnet', '10.70.0.0/24', '--label', 'team=ops', '--json'])).json();
    const networkFields = [
      'name', 'id', 'bridge', 'created', 'ipv4', 'ipv6', 'internal', 'icc', 'masquerade', 'mtu',
      'gatewayModeIpv4', 'gatewayModeIpv6', 'labels', 'options', 'endpoints',
    ];
    for (const f of networkFields) expect(created, f).toHaveProperty(f);
    expect(created).toMatchObject({
      name: 'web',
      bridge: `br-${created.id.slice(0, 12)}`,
      ipv4: { subnet: '10.70.0.0/24', gateway: '10.70.0.1', ipRange: null },
      ipv6: null,
      internal: false,
      icc: true,
      masquerade: true,
      mtu: 1500,
      gatewayModeIpv4: 'nat',
      labels: { team: 'ops' },
      endpoints: [],
    });
    expect(created.id).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(created.created).toISOString()).toBe(created.created);
    await sb.brnetOk(['network', 'create', 'db', '--subnet', '10.71.0.0/24']);

    const ls = (await sb.brnetOk(['network', 'ls', '--json'])).json();
    expect(Array.isArray(ls)).toBe(true);
    expect(ls.map((n: any) => n.name)).toEqual(['web', 'db']);
    expect(ls[0]).toEqual(created);

    const one = await sb.brnetOk(['network', 'inspect', 'web', '--json']);
    expect(one.json()).toEqual(created);
    expect((await sb.brnetOk(['network', 'inspect', 'web'])).stdout).toBe(one.stdout); // always JSON
    expect((await sb.brnetOk(['network', 'inspect', 'web', 'db', '--json'])).json().map((n: any) => n.name)).toEqual(['web', 'db']);
    expect((await sb.brnetOk(['network', 'ls', '-q'])).stdout).toBe('web\ndb\n');

    const config = (await sb.brnetOk(['config', 'show', '--json'])).json();
    expect(config).toEqual({ 'firewall-backend': 'iptables', iptables: true, ip6tables: true, 'ip-forward': true, 'userland-proxy': false, 'default-address-pools': null });
    // global options are accepted before the noun too
    expect((await sb.brnetOk(['--json', 'config', 'show'])).json()).toEqual(config);
  });

  it('errors: one line (and a hint) for people, one JSON document on stderr with --json', async () => {
    const human = await sb.brnet(['network', 'inspect', 'nope']);
    expect(human.code).toBe(3);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/^brnet: network nope not found\n(hint: .*\n)?$/);

    const json = await sb.brnet(['network', 'inspect', 'nope', '--json']);
    expect(json.code).toBe(3);
    expect(json.stdout).toBe('');
    expect(json.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'NOT_FOUND', message: 'network nope not found', exitCode: 3, hint: 'list networks with: brnet network ls' } });

    const taken = await sb.brnet(['network', 'create', 'web', '--json']);
    expect(taken.code).toBe(4);
    expect(JSON.parse(taken.stderr).error).toMatchObject({ code: 'CONFLICT', exitCode: 4 });
  });

  it('a closed pipe ends quietly with 0; a full disk for the output is one line and 5', async () => {
    const { BRNET_BIN } = await import('../helpers/sandbox.ts');
    const bash = (cmd: string) => sb.exec(['bash', '-c', cmd], { env: sb.brnetEnv() });
    // More JSON than a pipe holds: brnet writes on after `head` has gone.
    for (let i = 0; i < 40; i++) await sb.brnetOk(['network', 'create', `pipe${i}`, '--subnet', `10.${200 + (i >> 4)}.${(i & 15) * 16}.0/20`, '--label', `padding=${'x'.repeat(200)}`]);
    const piped = await bash(`${BRNET_BIN} network ls --json | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`);
    expect([piped.stdout.trim(), piped.stderr]).toEqual(['0', '']);
    const help = await bash(`${BRNET_BIN} network create --help | head -n 1 >/dev/null; echo "\${PIPESTATUS[0]}"`);
    expect([help.stdout.trim(), help.stderr]).toEqual(['0', '']);
    const full = await bash(`${BRNET_BIN} network ls > /dev/full; echo "exit $?"`);
    expect(full.stdout.trim()).toBe('exit 5');
    expect(full.stderr.trimEnd().split('\n')[0]).toMatch(/^brnet: cannot write the output: .*no space/i);
    expect(full.stderr).not.toMatch(/\n\s+at /);
    for (let i = 0; i < 40; i++) await sb.brnetOk(['network', 'rm', `pipe${i}`]);
  });

  it('tables are plain text without a terminal, whatever NO_COLOR says', async () => {
    for (const args of [['network', 'ls'], ['endpoint', 'ls'], ['port', 'ls'], ['config', 'show']]) {
      for (const env of [{}, { NO_COLOR: '' }, { NO_COLOR: '1' }] as Record<string, string>[]) {
        const r = await sb.brnetOk(args, { env });
        expect(r.stdout, `${args.join(' ')} ${JSON.stringify(env)}`).not.toContain(ESC);
        expect(r.stderr).not.toContain(ESC);
      }
    }
    const table = (await sb.brnetOk(['network', 'ls'])).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME +ID +BRIDGE +IPV4 +IPV6 +ENDPOINTS +FLAGS$/);
    expect(table[1]).toMatch(/^web +[0-9a-f]{12} +br-[0-9a-f]{12} +10\.70\.0\.0\/24 +- +0 +-$/);
  });

  it('on a terminal the table header is bold, and plain again with NO_COLOR or --no-color', async () => {
    // script(1) runs the command on a pseudo-terminal; the environment is set explicitly so
    // that CI's NO_COLOR does not leak in.
    const onTty = async (extra: string, args: string[]) => {
      const env = `env -u NO_COLOR -u CI -u FORCE_COLOR TERM=xterm-256color NODE_ENV=production BRNET_STATE_DIR=${shellQuote(sb.stateDir)} ${extra}`;
      const cmd = `${env} ${shellQuote(BRNET_BIN)} ${args.map(shellQuote).join(' ')}`;
      const r = await sb.exec(['script', '-qec', cmd, '/dev/null']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const coloured = await onTty('', ['network', 'ls']);
    expect(coloured).toContain(`${ESC}[1mNAME${ESC}[22m`);
    expect(coloured).toMatch(/web +[0-9a-f]{12}/);
    expect(await onTty('NO_COLOR=1', ['network', 'ls'])).not.toContain(ESC);
    expect(await onTty('', ['network', 'ls', '--no-color'])).not.toContain(ESC);
    expect(await onTty('', ['network', 'ls', '--json'])).not.toContain(ESC);
  });

  it('`brnet completion bash` is the script generated from the command tree, and bash accepts it', async () => {
    const r = await sb.brnetOk(['completion', 'bash']);
    const { completionScript } = await import('../../src/commands/completion.ts');
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(r.stdout).toBe(completionScript('bash', buildProgram(), version));
    const n = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
    expect(n.stderr).toBe('');
    expect(n.status).toBe(0);
    expect((await sb.brnetOk(['completion', 'zsh'])).stdout).toMatch(/^#compdef brnet\n/);
  });
});

// The man page needs no root, but does need man(1): .ci/run installs man-db, so in CI a
// missing `man` fails here instead of skipping the test.
describe.skipIf(!has('man') && !process.env.CI)('man page', () => {
  const page = join(REPO_ROOT, 'man', 'brnet.1');
  let text = '';
  beforeAll(() => {
    const r = spawnSync('sh', ['-c', `man --warnings -l ${shellQuote(page)} | col -bx`], {
      encoding: 'utf8',
      env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', LANG: 'C.UTF-8' },
    });
    expect(r.stderr, 'man -l man/brnet.1 (is man-db installed?)').toBe('');
    expect(r.status).toBe(0);
    text = r.stdout;
  });

  it('renders with every section', () => {
    for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'GLOBAL OPTIONS', 'EXIT STATUS', 'FILES', 'ENVIRONMENT', 'FIREWALL', 'EXAMPLES', 'SEE ALSO']) {
      expect(text).toMatch(new RegExp(`^${s}$`, 'm'));
    }
    expect(text).toMatch(/^BRNET\(1\) +brnet manual +BRNET\(1\)$/m);
    expect(text).toContain('brnet - manage Linux bridge networks without a daemon');
    for (const code of ['0', '1', '2', '3', '4', '5']) expect(text).toMatch(new RegExp(`│${code} +\\S`));
    for (const f of ['state.json', 'state.json.bak', 'state.lock', 'BRNET_STATE_DIR', 'BRNET_DEBUG', 'NO_COLOR', 'BRNET-FORWARD']) {
      expect(text).toContain(f);
    }
  });

  it('documents every command and every option', () => {
    for (const { path, leaf, cmd } of tree) {
      if (leaf && path.length) expect(text, path.join(' ')).toContain(`brnet ${path.join(' ')}`);
      for (const o of cmd.options) expect(text, `${path.join(' ')} ${o.long}`).toContain(o.long!);
    }
  });

  it('is generated from man/brnet.1.md by `npm run man`, reproducibly', () => {
    const { scripts, version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const cmd = String(scripts.man).replace(/ > man\/brnet\.1$/, '');
    expect(cmd).not.toBe(scripts.man);
    const r = spawnSync('sh', ['-c', cmd], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_package_version: version, PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH}` },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, 'man/brnet.1 is out of date: run `npm run man`').toBe(readFileSync(page, 'utf8'));
  });
});
