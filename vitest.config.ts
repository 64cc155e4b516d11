import { defineConfig } from 'vitest/config';

// `npm run coverage` (scripts/coverage.js) sets DEIMV2_COVERAGE: dist/ is then loaded by Node itself,
// not through vite's transform, so the V8 coverage of the test processes maps to the files on disk
// like that of the child processes and worker threads.
const coverage = process.env.DEIMV2_COVERAGE === '1';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/gpu runs for real with `npm run test:gpu` (DEIMV2_GPU_TESTS=1); in the normal run its
    // suites are skipped with a message that says why.
    exclude: ['node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    ...(coverage ? { server: { deps: { external: [/\/dist\//] } }, setupFiles: ['scripts/coverage-setup.js'] } : {}),
  },
});
