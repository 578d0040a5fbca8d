// Run by Bun (scripts/build.mjs starts it): compiles src/main.ts into one executable.
//   bun scripts/compile.mjs OUTFILE VERSION [TARGET EXECUTABLE]
// TARGET and EXECUTABLE cross-compile (e.g. bun-linux-arm64 and that platform's bun binary
// from npm): Bun would otherwise download the runtime, which this build never does.
//
// Settings that matter for a root tool, each with its reason:
// - autoloadDotenv/autoloadBunfig off: by default a compiled Bun executable reads `.env` and
//   `bunfig.toml` from the current directory, and a bunfig `preload` runs its code, so anyone
//   who can write a directory root runs brnet from could run code as root.
//   (tsconfig.json and package.json autoloading are off by default for executables; they are
//   turned off here explicitly so that a Bun upgrade cannot turn them on.)
// - bytecode: start-up without parsing the bundle (2-2.6x faster start than without).
// - jitPolicy 100: JavaScriptCore tiers code up to its optimising JITs a hundred times later
//   than it would. A brnet call lives for tens of milliseconds, where compiling hot code on
//   background threads costs more than it saves: measured, `network ls` ~10% faster (a third
//   less CPU), 5 MB less memory, a batch of 100 endpoints 15 MB less at the same speed.
// - graceful-fs resolves to node:fs: proper-lockfile loads it to queue and retry fs calls on
//   EMFILE, a concern of servers with thousands of open files, not of a call that opens a few.
const [outfile, version, target, executablePath] = process.argv.slice(2);
if (!outfile || !version) {
  console.error('usage: bun scripts/compile.mjs OUTFILE VERSION [TARGET EXECUTABLE]');
  process.exit(2);
}

const result = await Bun.build({
  entrypoints: [new URL('../src/main.ts', import.meta.url).pathname],
  compile: {
    outfile,
    ...(target ? { target, executablePath } : {}),
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
    jitPolicy: 100,
  },
  bytecode: true,
  minify: true,
  target: 'bun',
  define: { __BRNET_VERSION__: JSON.stringify(version) },
  plugins: [
    {
      name: 'graceful-fs-is-fs',
      setup(build) {
        build.onResolve({ filter: /^graceful-fs$/ }, () => ({ path: 'node:fs', external: true }));
      },
    },
  ],
});
if (!result.success) {
  for (const log of result.logs) console.error(String(log));
  process.exit(1);
}
