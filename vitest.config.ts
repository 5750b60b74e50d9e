import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites start servers (s3rver, dynalite) and worker pools; two cores are all CI has.
    maxWorkers: 2,
  },
});
