// npm run package: the release artefacts, per Debian architecture (amd64, arm64):
//   brnet_<version>_<arch>.deb            for dpkg/apt: files under /usr (staged by
//                                         scripts/install.sh --prefix /usr)
//   brnet-<version>-linux-<arch>.tar.gz   files only (no directory entries), relative to the
//                                         prefix /usr/local, so that
//                                           tar -C /usr/local -xzf brnet-<version>-linux-<arch>.tar.gz
//                                         installs it, and
//                                           tar -tzf brnet-<version>-linux-<arch>.tar.gz | (cd /usr/local && xargs rm -f)
//                                         removes exactly what it installed
//
//   node scripts/package.mjs [--arch amd64|arm64|all] [--out DIR]     (after npm run build)
//
// The binary for this machine's architecture is dist/brnet as built. Another architecture's
// is cross-compiled by scripts/compile.mjs with that platform's bun from npm
// (@oven/bun-linux-<arch> at the version package-lock.json pins), fetched with `npm pack`
// into node_modules/.cache/brnet and used only when its sha512 is the lock file's `integrity`:
// what goes into a package is then exactly what `npm ci` would have verified.
//
// Compression of the .deb: xz (dpkg-deb's default, -6). Measured on a 2-core machine with the
// 112 MB amd64 binary: xz 40.2 MB in 80 s (unpack 3.8 s), zstd -19 42.2 MB in 55 s, zstd -3
// 51.7 MB in 1.2 s, gzip -9 52.7 MB in 10 s. xz is the smallest download, and every dpkg reads
// it, whereas zstd needs dpkg 1.21.18 (Debian 12, Ubuntu 21.10) and the binary itself runs on
// older systems too (libc6 >= 2.17). The time is spent once per release.
//
// Nothing is stripped: a Bun executable carries brnet after its ELF sections, which strip
// drops. Every artefact's binary is checked to be byte-identical to the input.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  lstatSync,
  utimesSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bunArch, bunBinary } from './bun.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const ARCHES = ['amd64', 'arm64'];

function fail(message) {
  process.stderr.write(`package: ${message}\n`);
  process.exit(1);
}
// Inside the build, a refusal is thrown, so that the work directory is still removed.
const refuse = (message) => {
  throw new Error(message);
};

let args;
try {
  args = parseArgs({
    options: { arch: { type: 'string', default: 'all' }, out: { type: 'string', default: 'dist/packages' } },
    strict: true,
  }).values;
} catch (e) {
  process.stderr.write(`package: ${e.message}\nusage: node scripts/package.mjs [--arch amd64|arm64|all] [--out DIR]\n`);
  process.exit(2);
}
if (![...ARCHES, 'all'].includes(args.arch)) fail(`--arch must be amd64, arm64 or all, not ${args.arch}`);
const arches = args.arch === 'all' ? ARCHES : [args.arch];
const out = resolve(args.out);

// npm versions put a pre-release after '-', which Debian would read as a revision; '~' sorts
// before the release, as the pre-release does in semver.
const debVersion = pkg.version.replace('-', '~');
const hostDebArch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
const distBrnet = join(root, 'dist', 'brnet');

/** Runs a command; resolves with its stdout, rejects with its stderr's last lines. */
function run(cmd, argv, { env, cwd, stdout = 'pipe' } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: cwd ?? root, env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'pipe'] });
    let so = '';
    let se = '';
    child.stdout?.on('data', (d) => (so += d));
    child.stderr.on('data', (d) => (se += d));
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(so);
      else reject(new Error(`${cmd} ${argv.join(' ')} failed (${signal ?? `exit ${code}`}):\n${se.trim().split('\n').slice(-5).join('\n')}`));
    });
  });
}

const hashFile = (algorithm, file, encoding = 'hex') => createHash(algorithm).update(readFileSync(file)).digest(encoding);

function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? [{ path: relative(base, p), dir: true }, ...walk(p, base)] : [{ path: relative(base, p), dir: false }];
    });
}

// Reproducible artefacts: every mtime is the last commit's time (or SOURCE_DATE_EPOCH), not
// the time of the build.
const epoch = Number(
  process.env.SOURCE_DATE_EPOCH ||
    spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' }).stdout?.trim() ||
    Math.floor(Date.now() / 1000),
);
function clampTimes(dir) {
  for (const e of walk(dir).reverse()) utimesSync(join(dir, e.path), epoch, epoch);
  utimesSync(dir, epoch, epoch);
}

// Debian machine-readable copyright (DEP-5). There is no upstream address to give.
const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: brnet
Comment: ${pkg.description}

Files: *
Copyright: brnet developers
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License");
 you may not use this file except in compliance with the License.
 You may obtain a copy of the License at
 .
 https://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS,
 WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 See the License for the specific language governing permissions and
 limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0
 can be found in "/usr/share/common-licenses/Apache-2.0".
`;

// The unit is installed but not enabled (it is the admin's choice, and does nothing before
// the first network exists); systemd only needs to re-read its unit directories.
const reloadSystemd = `#!/bin/sh
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
`;

/** The bun that runs on `debArch`, from the npm registry, verified against package-lock.json. */
async function foreignBun(debArch, work) {
  const name = `@oven/bun-linux-${bunArch(debArch)}`;
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity?.startsWith('sha512-')) refuse(`package-lock.json records no version and sha512 integrity for ${name}`);
  const cache = join(root, 'node_modules', '.cache', 'brnet');
  const tgz = join(cache, `${name.slice(1).replace('/', '-')}-${entry.version}.tgz`);
  const want = entry.integrity.slice('sha512-'.length);
  if (!existsSync(tgz)) {
    mkdirSync(cache, { recursive: true });
    const dl = mkdtempSync(join(cache, 'download-'));
    try {
      process.stderr.write(`package: fetching ${name}@${entry.version} with npm pack\n`);
      const [npm, npmArgs] = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
      const json = await run(npm, [...npmArgs, 'pack', `${name}@${entry.version}`, '--pack-destination', dl, '--ignore-scripts', '--json']);
      const file = JSON.parse(json)[0]?.filename;
      if (!file || !existsSync(join(dl, file))) throw new Error(`npm pack ${name}@${entry.version} produced no tarball`);
      renameSync(join(dl, file), tgz);
    } finally {
      rmSync(dl, { recursive: true, force: true });
    }
  }
  // Checked on every use, not only after the download: the cache is a writable directory.
  const got = hashFile('sha512', tgz, 'base64');
  if (got !== want) {
    rmSync(tgz, { force: true });
    refuse(`${tgz}: sha512-${got} is not the integrity package-lock.json records for ${name}@${entry.version} (sha512-${want}); removed it, refusing to build with it`);
  }
  const dir = join(work, 'bun');
  mkdirSync(dir);
  await run('tar', ['-xzf', tgz, '-C', dir, 'package/bin/bun']);
  return join(dir, 'package', 'bin', 'bun');
}

/** The brnet executable for `debArch`. */
async function binaryFor(debArch, work) {
  if (debArch === hostDebArch && existsSync(distBrnet)) return distBrnet;
  const bun = bunBinary();
  if (!bun) refuse(`no bun runs on this machine (${process.platform}-${process.arch}) to cross-compile the ${debArch} binary`);
  const exe = await foreignBun(debArch, work);
  const target = `bun-linux-${{ amd64: 'x64', arm64: 'arm64' }[debArch]}`;
  const outfile = join(work, 'brnet');
  process.stderr.write(`package: cross-compiling brnet for ${target}\n`);
  await run(bun, [join(root, 'scripts', 'compile.mjs'), outfile, pkg.version, target, exe]);
  if (!existsSync(outfile)) refuse(`compiling ${outfile} for ${target} produced nothing`);
  return outfile;
}

async function install(prefix, destdir, binary, completionFrom) {
  await run('sh', [join(root, 'scripts', 'install.sh'), '--prefix', prefix, '--destdir', destdir, '--binary', binary, '--completion-from', completionFrom]);
}

function sameBinary(what, file, binary) {
  if (hashFile('sha256', file) !== hashFile('sha256', binary)) refuse(`${what} is not byte-identical to ${binary}`);
}

async function buildDeb(debArch, binary, completionFrom, work) {
  const stage = join(work, 'deb');
  await install('/usr', stage, binary, completionFrom);
  mkdirSync(join(stage, 'usr/share/doc/brnet'), { recursive: true });
  writeFileSync(join(stage, 'usr/share/doc/brnet/copyright'), copyright, { mode: 0o644 });
  sameBinary(`${stage}/usr/bin/brnet`, join(stage, 'usr/bin/brnet'), binary);

  const entries = walk(stage);
  // As dpkg-gencontrol counts: each file rounded up to a KiB, each directory one KiB.
  const installedSize = entries.reduce((kib, e) => kib + (e.dir ? 1 : Math.ceil(lstatSync(join(stage, e.path)).size / 1024)), 0);
  const md5sums = entries
    .filter((e) => !e.dir)
    .map((e) => `${hashFile('md5', join(stage, e.path))}  ${e.path}\n`)
    .join('');
  mkdirSync(join(stage, 'DEBIAN'), { mode: 0o755 });
  chmodSync(join(stage, 'DEBIAN'), 0o755);
  writeFileSync(
    join(stage, 'DEBIAN/control'),
    `Package: brnet
Version: ${debVersion}
Architecture: ${debArch}
Maintainer: brnet developers <brnet@localhost>
Installed-Size: ${installedSize}
Depends: libc6 (>= 2.17), iproute2, iptables
Recommends: conntrack
Suggests: bash-completion
Section: net
Priority: optional
Description: Linux bridge networks, endpoints and published ports, without a daemon
 brnet manages Linux bridge networks from the command line, the way Docker's
 bridge driver does, but without a daemon: each call reads its state, changes
 the kernel, records the result and exits. It handles bridges, IPv4 and IPv6
 subnets, endpoints in network namespaces, published ports, and the firewall
 rules for all of it (iptables and ip6tables, nft or legacy backend).
 .
 The unit brnet-restore.service re-creates the networks at boot once enabled:
 systemctl enable --now brnet-restore.service
`,
    { mode: 0o644 },
  );
  writeFileSync(join(stage, 'DEBIAN/md5sums'), md5sums, { mode: 0o644 });
  for (const script of ['postinst', 'postrm']) writeFileSync(join(stage, 'DEBIAN', script), reloadSystemd, { mode: 0o755 });
  clampTimes(stage);

  const deb = join(out, `brnet_${debVersion}_${debArch}.deb`);
  const tmp = `${deb}.tmp`;
  await run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, tmp], { env: { SOURCE_DATE_EPOCH: String(epoch) } });
  const check = join(work, 'deb-check');
  mkdirSync(check);
  await run('dpkg-deb', ['-x', tmp, check]);
  sameBinary(`usr/bin/brnet in ${deb}`, join(check, 'usr/bin/brnet'), binary);
  renameSync(tmp, deb);
  return deb;
}

async function buildTarball(debArch, binary, completionFrom, work) {
  const stage = join(work, 'tar');
  const prefix = '/usr/local';
  await install(prefix, stage, binary, completionFrom);
  const top = join(stage, prefix);
  mkdirSync(join(top, 'share/doc/brnet'), { recursive: true });
  writeFileSync(join(top, 'share/doc/brnet/copyright'), copyright, { mode: 0o644 });
  sameBinary(`${top}/bin/brnet`, join(top, 'bin/brnet'), binary);
  clampTimes(top);
  const files = walk(top).filter((e) => !e.dir).map((e) => e.path);

  const tarball = join(out, `brnet-${pkg.version}-linux-${debArch}.tar.gz`);
  const tmp = `${tarball}.tmp`;
  const list = join(work, 'tar-files');
  writeFileSync(list, files.join('\n') + '\n');
  await run('tar', [
    '-C', top, '--owner=0', '--group=0', '--numeric-owner', '--mtime', `@${epoch}`, '--format=gnu',
    '--use-compress-program', 'gzip -9n', '-cf', tmp, '--no-recursion', '-T', list,
  ]);
  const check = join(work, 'tar-check');
  mkdirSync(check);
  await run('tar', ['-xzf', tmp, '-C', check, 'bin/brnet']);
  sameBinary(`bin/brnet in ${tarball}`, join(check, 'bin/brnet'), binary);
  renameSync(tmp, tarball);
  return tarball;
}

if (spawnSync('dpkg-deb', ['--version']).status !== 0) fail('dpkg-deb not found (apt-get install dpkg)');
if (!existsSync(distBrnet) && !existsSync(join(root, 'dist', 'cli.js'))) fail('dist/ is empty: run npm run build first');
if (existsSync(distBrnet)) {
  const v = spawnSync(distBrnet, ['--version'], { encoding: 'utf8' }).stdout?.trim();
  if (v !== pkg.version) fail(`dist/brnet says version ${v || '(nothing)'}, package.json ${pkg.version}: run npm run build first`);
}
// The completion scripts do not depend on the architecture; they come from a brnet that runs
// here: dist/brnet, or the launcher (Node on dist/cli.js) where Bun has no build.
const completionFrom = existsSync(distBrnet) ? distBrnet : join(root, 'bin', 'brnet');

mkdirSync(out, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'brnet-package-'));
const cleanup = () => rmSync(work, { recursive: true, force: true });
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.on(sig, () => (cleanup(), process.exit(code)));
try {
  const builds = [];
  for (const debArch of arches) {
    const dir = join(work, debArch);
    mkdirSync(dir);
    const binary = await binaryFor(debArch, dir);
    // The .deb (xz, one core) and the tarball (gzip, the other) are built side by side.
    for (const p of [buildDeb(debArch, binary, completionFrom, dir), buildTarball(debArch, binary, completionFrom, dir)]) {
      p.catch(() => {}); // reported by Promise.all below, not as unhandled while the next arch compiles
      builds.push(p);
    }
  }
  const artefacts = await Promise.all(builds);
  for (const a of artefacts) process.stdout.write(`${a}  ${(statSync(a).size / 1e6).toFixed(1)} MB (${statSync(a).size} bytes)\n`);
} catch (e) {
  for (const f of readdirSync(out)) if (f.startsWith('brnet') && f.endsWith('.tmp')) rmSync(join(out, f), { force: true });
  process.stderr.write(`package: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
