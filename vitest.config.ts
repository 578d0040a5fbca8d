import { defineConfig } from 'vitest/config';

export default defineConfig({
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
