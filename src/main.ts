// The executable's entry point, bundled as dist/cli.js. `brnet --version` is answered before
// anything else is loaded; every other command loads the command tree from cli.ts.
declare const __BRNET_VERSION__: string;

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V' || args[0] === 'version')) {
  process.stdout.write(`${typeof __BRNET_VERSION__ === 'string' ? __BRNET_VERSION__ : '0.0.0-dev'}\n`);
} else {
  const { main } = await import('./cli.ts');
  process.exitCode = await main();
}
