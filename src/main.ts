// The executable's entry point: the compiled dist/brnet and the Node bundle dist/cli.js.
// No top-level await: Bun compiles an entry with bytecode only without it.
import { main } from './cli.ts';

main().then((code) => {
  process.exitCode = code;
});
