// Where the pinned Bun (devDependency `bun`) is. Its postinstall links node_modules/.bin/bun;
// where install scripts did not run, the platform package's binary is used directly.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const modules = fileURLToPath(new URL('../node_modules/', import.meta.url));

/** Bun's name for a Linux architecture (Node's process.arch or Debian's). */
export const bunArch = (arch) => ({ x64: 'x64', amd64: 'x64', arm64: 'aarch64', aarch64: 'aarch64' })[arch];

/** The runnable bun for this machine, or null where the platform has no Bun build. */
export function bunBinary() {
  const arch = bunArch(process.arch);
  const candidates = [`${modules}.bin/bun`, ...(arch && process.platform === 'linux' ? [`${modules}@oven/bun-linux-${arch}/bin/bun`] : [])];
  return candidates.find((p) => existsSync(p)) ?? null;
}
