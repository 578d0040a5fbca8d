// npm run build: the two forms brnet runs in.
// - dist/brnet: the product, one executable compiled by Bun (scripts/compile.mjs) for this
//   machine's platform. It needs no Node and no node_modules at run time.
// - dist/cli.js: one ESM bundle of the same sources for Node, the fallback where Bun has no
//   build (bin/brnet runs it when dist/brnet is missing, or with BRNET_RUNTIME=node).
// The banner gives the bundled CommonJS dependencies (commander, proper-lockfile) the
// `require` and `__filename` that ESM lacks.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bunBinary } from './bun.mjs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const dist = (f) => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));

rmSync(dist(''), { recursive: true, force: true }); // nothing stale survives a build

await build({
  entryPoints: [{ in: 'src/main.ts', out: 'cli' }],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: 'dist',
  minifySyntax: true,
  define: { __BRNET_VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
  // See scripts/compile.mjs for why graceful-fs is node:fs.
  alias: { 'graceful-fs': 'node:fs' },
  banner: {
    js: 'import{createRequire as __cr}from"node:module";import{fileURLToPath as __fu}from"node:url";const require=__cr(import.meta.url);const __filename=__fu(import.meta.url);',
  },
});

const bun = bunBinary();
if (!bun) {
  process.stderr.write(`build: Bun has no build for ${process.platform}-${process.arch} here: brnet will run on Node (dist/cli.js)\n`);
} else {
  const r = spawnSync(bun, [fileURLToPath(new URL('compile.mjs', import.meta.url)), dist('brnet'), pkg.version], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(dist('brnet'))) {
    process.stderr.write(`build: compiling dist/brnet with ${bun} failed\n`);
    process.exit(1);
  }
}
