/**
 * `npm run test:scale`: the scale-out suite (docs/scale.md). Needs a PostgreSQL server
 * (PAYGRAPH_TEST_DATABASE_URL: a role that may CREATE DATABASE and CREATE ROLE; every stack gets a fresh
 * database, with its services on roles of their own)
 * and a Redis (REDIS_URL). Runs, one after the other:
 *   1. `pg`: the whole integration suite (test/**\/*.test.ts) on PostgreSQL + Redis;
 *   2. `cluster`: test/scale/*.scale.ts, which start real clusters of processes (runtime/cluster.ts).
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

const missing = ['PAYGRAPH_TEST_DATABASE_URL', 'REDIS_URL'].filter((v) => !process.env[v]);
if (missing.length > 0) {
  throw new Error(
    `npm run test:scale needs ${missing.join(' and ')}: e.g.\n` +
      `  PAYGRAPH_TEST_DATABASE_URL=postgres://paygraph:paygraph@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 npm run test:scale\n` +
      `(the role must be allowed to CREATE DATABASE and CREATE ROLE; see docs/scale.md)`,
  );
}

// Not merged with vitest.config.ts (that would add its `include` to both projects): each project
// takes its resolve settings (the graphql realm pin) and test defaults explicitly.
const shared = { resolve: base.resolve } as const;
const testDefaults = { testTimeout: base.test?.testTimeout, hookTimeout: base.test?.hookTimeout, setupFiles: base.test?.setupFiles };

export default defineConfig({
  ...shared,
  test: {
    maxWorkers: base.test?.maxWorkers,
    projects: [
      {
        ...shared,
        test: {
          ...testDefaults,
          name: 'pg',
          include: ['test/**/*.test.ts'],
          env: { LOG_LEVEL: 'error', PAYGRAPH_TEST_REDIS_URL: process.env.REDIS_URL! },
          sequence: { groupOrder: 0 },
        },
      },
      {
        ...shared,
        test: {
          name: 'cluster',
          include: ['test/scale/**/*.scale.ts'],
          setupFiles: base.test?.setupFiles,
          env: { LOG_LEVEL: 'error' },
          // Each cluster is 9 processes on a shared machine: starting one takes a while.
          testTimeout: 120_000,
          hookTimeout: 240_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
