// The executable's entry point: the compiled dist/brnet and the Node bundle dist/cli.js.
// `brnet --version` is answered before the command tree is loaded: in the compiled executable
// loading commander and building the tree is about half of such a call, and scripts ask for
// the version to decide what to run. No top-level await: Bun compiles an entry with bytecode only
// without it.
declare const __BRNET_VERSION__: string;

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V' || args[0] === 'version')) {
  // console.log, not ui/tty.ts: loading node:fs and Buffer would be most of what is left.
  console.log(typeof __BRNET_VERSION__ === 'string' ? __BRNET_VERSION__ : '0.0.0-dev');
} else if (args[0] === '__proxy') {
  // The userland proxy's role (net/proxy-role.ts), which must not pay for the command tree.
  import('./net/proxy-role.ts').then(({ runProxy }) => runProxy(args.slice(1)));
} else {
  import('./cli.ts').then(async ({ main }) => {
    process.exitCode = await main();
  });
}
