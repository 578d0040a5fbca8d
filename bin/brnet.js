#!/usr/bin/env node
// Plain JavaScript on purpose: it must run (and explain itself) even on a too-old Node.
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`brnet: Node.js ${process.versions.node} is too old: brnet needs Node.js 20 or newer\n`);
  process.exit(5);
}
import('../dist/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('brnet: dist/cli.js is missing: run `npm run build` in the brnet checkout\n');
  } else {
    process.stderr.write(`brnet: ${err && err.stack ? err.stack : err}\n`);
  }
  process.exit(5);
});
