// The install paths: the amd64 .deb and tarball that scripts/package.mjs builds, and
// scripts/install.sh staging into a DESTDIR and uninstalling. No root, no network, and every
// file is written under one temporary directory (TMPDIR points there too, for the scripts'
// own scratch space).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/sandbox.ts';

const BUILD_TIMEOUT_MS = 400_000; // xz of a 112 MB binary takes 80 s on 2 idle cores
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
const DIST_BRNET = join(REPO_ROOT, 'dist', 'brnet');
const INSTALL_SH = join(REPO_ROOT, 'scripts', 'install.sh');
const isX64 = process.arch === 'x64';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never throws for a non-zero exit. */
function exec(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
  });
}

async function execOk(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<Result> {
  const r = await exec(cmd, args, env, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** Every regular file and symlink under `dir`, relative to it, sorted. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const sameBytes = (a: string, b: string) => readFileSync(a).equals(readFileSync(b));

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'brnet-package-test-'));
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(!isX64)('the amd64 packages (built on x64 machines only: other architectures cross-compile, by hand)', () => {
  let out: string;
  let deb: string;
  let tarball: string;
  let build: Result;

  beforeAll(async () => {
    expect(existsSync(DIST_BRNET), 'dist/brnet is missing: run npm run build first').toBe(true);
    out = join(scratch, 'out');
    const tmp = join(scratch, 'tmp');
    mkdirSync(tmp);
    build = await exec('node', ['scripts/package.mjs', '--arch', 'amd64', '--out', out], { TMPDIR: tmp }, BUILD_TIMEOUT_MS);
    deb = join(out, `brnet_${version.replace('-', '~')}_amd64.deb`);
    tarball = join(out, `brnet-${version}-linux-amd64.tar.gz`);
  }, BUILD_TIMEOUT_MS + 10_000);

  it('builds the amd64 .deb and tarball only, prints each with its size, and leaves no scratch files', () => {
    expect(build.code, build.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual([`brnet-${version}-linux-amd64.tar.gz`, `brnet_${version.replace('-', '~')}_amd64.deb`].sort());
    for (const f of [deb, tarball]) {
      expect(build.stdout).toContain(`${f}  `);
      expect(build.stdout).toContain(`(${statSync(f).size} bytes)`);
      // the compressed binary alone is tens of MB; an artefact without it would be tiny
      expect(statSync(f).size).toBeGreaterThan(20e6);
    }
    expect(readdirSync(join(scratch, 'tmp'))).toEqual([]);
  });

  it('has the control fields of a Debian package that needs no Node', async () => {
    const info = (await execOk('dpkg-deb', ['--info', deb])).stdout;
    const field = (name: string) => info.match(new RegExp(`^ ${name}: (.*)$`, 'm'))?.[1];
    expect(field('Package')).toBe('brnet');
    expect(field('Version')).toBe(version.replace('-', '~'));
    expect(field('Architecture')).toBe('amd64');
    expect(field('Section')).toBe('net');
    expect(field('Priority')).toBe('optional');
    expect(field('Maintainer')).toMatch(/^.+ <.+@.+>$/);
    const depends = field('Depends')!.split(/,\s*/);
    expect(depends).toContain('libc6 (>= 2.17)');
    expect(depends).toContain('iproute2');
    expect(depends).toContain('iptables');
    expect(info).not.toMatch(/node/i);
    expect(field('Recommends')).toContain('conntrack');
    // about the size of the unpacked tree, in KiB: the binary dominates
    const installed = Number(field('Installed-Size'));
    const binKiB = statSync(DIST_BRNET).size / 1024;
    expect(installed).toBeGreaterThan(binKiB);
    expect(installed).toBeLessThan(binKiB + 200);
    expect(field('Description')).toBeTruthy();
  });

  it('contains the binary, the man page, both completions, the unit and the copyright, owned by root', async () => {
    const contents = (await execOk('dpkg-deb', ['--contents', deb])).stdout;
    const entries = new Map(
      contents
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/))
        .map((c) => [c[5]!.replace(/^\.\//, ''), { mode: c[0]!, owner: c[1]! }]),
    );
    for (const f of [
      'usr/bin/brnet',
      'usr/share/man/man1/brnet.1.gz',
      'usr/share/bash-completion/completions/brnet',
      'usr/share/zsh/vendor-completions/_brnet',
      'usr/lib/systemd/system/brnet-restore.service',
      'usr/share/doc/brnet/copyright',
    ]) {
      expect(entries.get(f), f).toBeDefined();
      expect(entries.get(f)!.owner, f).toBe('root/root');
      expect(entries.get(f)!.mode, f).toBe(f === 'usr/bin/brnet' ? '-rwxr-xr-x' : '-rw-r--r--');
    }
    expect([...entries.keys()].filter((p) => !p.startsWith('usr/') && p !== '')).toEqual([]);
  });

  it('unpacks (dpkg -x) to an unstripped binary that runs from there', async () => {
    const root = join(scratch, 'deb-root');
    await execOk('dpkg', ['-x', deb, root]);
    const bin = join(root, 'usr/bin/brnet');
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    expect(sameBytes(bin, DIST_BRNET)).toBe(true);
    const v = await execOk(bin, ['--version'], {}, 15_000);
    expect(v.stdout).toBe(`${version}\n`);
    const help = await execOk(bin, ['--help'], {}, 15_000);
    expect(help.stdout).toMatch(/^Usage: brnet/);
    expect(help.stdout).toContain('network');
    // the shipped completion is what this brnet prints
    const bash = await execOk(bin, ['completion', 'bash'], {}, 15_000);
    expect(readFileSync(join(root, 'usr/share/bash-completion/completions/brnet'), 'utf8')).toBe(bash.stdout);
    const man = await execOk('sh', ['-c', 'gzip -dc "$1"', 'sh', join(root, 'usr/share/man/man1/brnet.1.gz')]);
    expect(man.stdout).toBe(readFileSync(join(REPO_ROOT, 'man/brnet.1'), 'utf8'));
    rmSync(root, { recursive: true, force: true });
  });

  it('the tarball holds files only, relative to /usr/local, with the same binary', async () => {
    const list = (await execOk('tar', ['-tzf', tarball])).stdout.trim().split('\n').sort();
    expect(list).toEqual([
      'bin/brnet',
      'lib/systemd/system/brnet-restore.service',
      'share/bash-completion/completions/brnet',
      'share/doc/brnet/copyright',
      'share/man/man1/brnet.1',
      'share/zsh/site-functions/_brnet',
    ]);
    const root = join(scratch, 'tar-root');
    mkdirSync(root);
    await execOk('tar', ['-C', root, '-xzf', tarball]);
    expect(sameBytes(join(root, 'bin/brnet'), DIST_BRNET)).toBe(true);
    expect(statSync(join(root, 'bin/brnet')).mode & 0o777).toBe(0o755);
    expect((await execOk(join(root, 'bin/brnet'), ['--version'], {}, 15_000)).stdout).toBe(`${version}\n`);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('scripts/install.sh', () => {
  const expected = [
    'usr/local/bin/brnet',
    'usr/local/lib/systemd/system/brnet-restore.service',
    'usr/local/share/bash-completion/completions/brnet',
    'usr/local/share/man/man1/brnet.1',
    'usr/local/share/zsh/site-functions/_brnet',
  ];

  it.skipIf(!existsSync(DIST_BRNET))('installs into a DESTDIR under the prefix, and --uninstall removes every file it installed', async () => {
    const destdir = join(scratch, 'destdir');
    const r = await execOk('sh', [INSTALL_SH, '--destdir', destdir, '--prefix', '/usr/local'], { TMPDIR: scratch });
    expect(filesUnder(destdir)).toEqual(expected);
    expect(sameBytes(join(destdir, 'usr/local/bin/brnet'), DIST_BRNET)).toBe(true);
    expect(statSync(join(destdir, 'usr/local/bin/brnet')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(destdir, 'usr/local/share/man/man1/brnet.1'), 'utf8')).toBe(readFileSync(join(REPO_ROOT, 'man/brnet.1'), 'utf8'));
    expect(readFileSync(join(destdir, 'usr/local/share/zsh/site-functions/_brnet'), 'utf8')).toMatch(/^#compdef brnet\n/);
    for (const f of expected) expect(r.stdout).toContain(`installed ${join(destdir, f)}\n`);
    // its scratch directory is gone
    expect(readdirSync(scratch).filter((f) => f.startsWith('brnet-install.'))).toEqual([]);

    const u = await execOk('sh', [INSTALL_SH, '--destdir', destdir, '--prefix', '/usr/local', '--uninstall']);
    expect(filesUnder(destdir)).toEqual([]);
    expect(u.stdout.trim().split('\n').sort()).toEqual(expected.map((f) => `removed ${join(destdir, f)}`).sort());
    // a second uninstall finds nothing to remove, and says nothing
    expect((await execOk('sh', [INSTALL_SH, '--destdir', destdir, '--prefix', '/usr/local', '--uninstall'])).stdout).toBe('');
  });

  it('refuses with one line and exit 5 when the binary is missing, and writes nothing', async () => {
    const destdir = join(scratch, 'refused');
    const r = await exec('sh', [INSTALL_SH, '--destdir', destdir, '--binary', join(scratch, 'no-such-brnet')], { TMPDIR: scratch });
    expect(r.code).toBe(5);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('npm run build');
    expect(r.stdout).toBe('');
    expect(existsSync(destdir)).toBe(false);
  });

  it('refuses a relative --prefix as a usage error', async () => {
    const r = await exec('sh', [INSTALL_SH, '--destdir', join(scratch, 'refused'), '--prefix', 'usr']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--prefix');
  });
});
