import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // GPU tests run with `npm run test:gpu` (DEIMV2_GPU_TESTS=1); the normal run leaves them out.
    exclude: process.env.DEIMV2_GPU_TESTS ? ['node_modules/**'] : ['test/gpu/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
