import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships both index.mjs and index.js. Node (and so tsx, and every CJS Apollo package)
    // loads index.js; vite would pick index.mjs for our sources, giving two graphql realms in one
    // process ("Cannot use GraphQLObjectType from another module or realm"). Pin the one Node uses.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    // Fixed seed for the property tests (PAYGRAPH_TEST_SEED to explore others).
    setupFiles: ['test/helpers/setup.ts'],
    // Services log JSON to stdout; in tests only errors (tests that read logs pass their own level).
    env: { LOG_LEVEL: 'error' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file starts its own stack on ephemeral ports; two cores, so two at a time.
    maxWorkers: 2,
    projects: [
      // The whole suite on the default SQLite driver (lib/db.ts DEFAULT_SQLITE_DRIVER)...
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts'] } },
      // ...and the money suite (ledger, movements, concurrency, property tests, ledger:verify) again
      // on the other driver, so both stay correct (docs/performance.md, "Driver choice").
      { extends: true, test: { name: 'sqlite3', include: ['test/money/**/*.test.ts'], env: { LOG_LEVEL: 'error', PAYGRAPH_SQLITE_DRIVER: 'sqlite3' } } },
    ],
  },
});
