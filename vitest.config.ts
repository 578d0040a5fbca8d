import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    {
      // src imports the completion templates `with { type: 'text' }`, as esbuild and Bun
      // understand it; vite would parse them as JavaScript.
      name: 'shell-templates-as-text',
      transform(code, id) {
        if (/\.(bash|zsh)$/.test(id)) return { code: `export default ${JSON.stringify(code)};`, map: null };
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // lowdb switches to a memory-only adapter under NODE_ENV=test; brnet must
    // really persist its state, in tests too.
    env: { NODE_ENV: 'production' },
  },
});
