// One ESM bundle: a provisioning script calls brnet hundreds of times, and loading one
// file is far cheaper than resolving a node_modules tree on every start.
// The banner gives the bundled CommonJS dependencies (commander, cli-table3,
// proper-lockfile, write-file-atomic) the `require` and `__filename` that ESM lacks.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true }); // no stale chunks

// proper-lockfile loads graceful-fs, which patches fs to queue and retry calls that fail with
// EMFILE, a concern of servers holding thousands of files open, not of a call that opens a
// few: node:fs itself saves ~3 ms of loading on every command that takes the lock.
const ALIASES = { 'graceful-fs': 'node:fs' };

await build({
  // src/main.ts answers --version at once and loads the command tree (src/cli.ts) otherwise;
  // the bundle keeps the name dist/cli.js.
  entryPoints: [{ in: 'src/main.ts', out: 'cli' }],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  minifySyntax: true,
  define: { __BRNET_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
  alias: ALIASES,
  banner: {
    js: 'import{createRequire as __cr}from"node:module";import{fileURLToPath as __fu}from"node:url";const require=__cr(import.meta.url);const __filename=__fu(import.meta.url);',
  },
});

// The start-up snapshot: bin/brnet runs `node --snapshot-blob dist/brnet.blob` when the blob
// was made by the very node binary it is about to run (same mtime as dist/node.stamp), and
// dist/cli.js otherwise. A call then starts from a heap that already holds the command tree
// and the code of every module, instead of reading and linking the bundle's files: about
// 15 ms less per call, which is most of what brnet adds to Node's own start-up.
// The snapshot is built from a CommonJS bundle (the only form Node 20 can snapshot); lazy
// imports stay lazy inside it, so only cli.ts and commander are evaluated at build time.
const dist = (f) => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));
await build({
  entryPoints: ['src/snapshot.ts'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: dist('snapshot.cjs'),
  alias: ALIASES,
  minify: true,
  keepNames: true,
  define: { __BRNET_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
});
// --no-warnings: Node warns that child_process (which commander loads) is not verified for
// snapshots; brnet starts no process at build time, and the whole test suite runs through
// the snapshot.
const made = spawnSync(process.execPath, ['--no-warnings', '--snapshot-blob', dist('brnet.blob'), '--build-snapshot', dist('snapshot.cjs')], { encoding: 'utf8' });
rmSync(dist('snapshot.cjs'));
// `touch -r` copies node's mtime to the nanosecond (utimes from Node rounds it).
const stamped = made.status === 0 && spawnSync('touch', ['-r', process.execPath, dist('node.stamp')]).status === 0;
if (!stamped) {
  rmSync(dist('brnet.blob'), { force: true });
  rmSync(dist('node.stamp'), { force: true });
  process.stderr.write(`build: no start-up snapshot (brnet will start from dist/cli.js): ${made.stderr || made.error?.message || 'touch failed'}\n`);
}
