// Entry point of the V8 start-up snapshot (dist/brnet.blob, see scripts/build.mjs and
// bin/brnet). The snapshot holds the heap after this module and its static imports (the
// command tree, commander and the state schema) have been evaluated, and the source of every
// lazily imported module, so a call starts without reading, parsing or linking any JavaScript file.
// Only modules without load-time side effects may be imported statically from here: anything
// evaluated now is frozen into the snapshot (environment, argv, time), which is why cli.ts
// reads argv in main() and not at load.
import { startupSnapshot } from 'node:v8';
import { main, prebuildProgram } from './cli.ts';
// Pure data (zod schemas), needed by every command that reads the state: built now, once.
// Evaluating the mutating commands' cores here too saves ~4 ms on `create` but costs ~3 ms on
// every `ls` (a larger heap to deserialise), so they load at run time, from the snapshot's
// source. The state lock (proper-lockfile) and the atomic writer must load at run time anyway:
// they hook process signals and patch fs when loaded.
import './state/schema.ts';

declare const __BRNET_VERSION__: string;

prebuildProgram();

startupSnapshot.setDeserializeMainFunction(async () => {
  // Started as `node --snapshot-blob brnet.blob -- ARGS`: process.argv is [node, ...ARGS].
  const args = process.argv.slice(1);
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V' || args[0] === 'version')) {
    process.stdout.write(`${__BRNET_VERSION__}\n`);
    return;
  }
  process.exitCode = await main([process.argv[0] ?? 'node', 'brnet', ...args]);
});
