/**
 * Setup file of `npm run coverage` (scripts/coverage.js): vitest ends its test processes without the
 * normal exit that makes Node write NODE_V8_COVERAGE, so each test file writes what its own process ran.
 */
import v8 from 'node:v8';
import { afterAll } from 'vitest';

afterAll(() => {
  if (process.env.NODE_V8_COVERAGE) v8.takeCoverage();
});
