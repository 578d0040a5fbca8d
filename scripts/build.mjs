// One ESM bundle: a provisioning script calls brnet hundreds of times, and loading one
// file is far cheaper than resolving a node_modules tree on every start.
// The banner gives the bundled CommonJS dependencies (commander, cli-table3,
// proper-lockfile, write-file-atomic) the `require` and `__filename` that ESM lacks.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true }); // no stale chunks

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
  banner: {
    js: 'import{createRequire as __cr}from"node:module";import{fileURLToPath as __fu}from"node:url";const require=__cr(import.meta.url);const __filename=__fu(import.meta.url);',
  },
});
