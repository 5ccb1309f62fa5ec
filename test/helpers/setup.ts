/**
 * Set-up of every test file (vitest.config.ts `setupFiles`).
 *
 * No egress: the egress guard (lib/egress-guard.mjs) refuses every connection outside loopback,
 * in the test process and in every process it spawns (the guard puts itself in NODE_OPTIONS).
 * The one exception: the hosts of the test PostgreSQL and Redis (`npm run test:scale`), wherever
 * they are, go in PAYGRAPH_EGRESS_ALLOW, for this process and its children.
 *
 * Property tests (fast-check) draw their cases from a fixed seed, so that every run checks the
 * same cases and a failure is reproduced by running again; PAYGRAPH_TEST_SEED=<integer> explores
 * other cases (fast-check prints the seed and path of any counterexample it finds).
 */
import '../../lib/egress-guard.mjs';
import fc from 'fast-check';

const services = [process.env.PAYGRAPH_TEST_DATABASE_URL, process.env.PAYGRAPH_TEST_REDIS_URL, process.env.REDIS_URL].filter(
  (u): u is string => !!u && URL.canParse(u),
);
const allow = [...(process.env.PAYGRAPH_EGRESS_ALLOW ?? '').split(','), ...services.map((u) => new URL(u).hostname)].filter(Boolean);
if (allow.length > 0) process.env.PAYGRAPH_EGRESS_ALLOW = [...new Set(allow)].join(',');

const DEFAULT_SEED = 20_261_201;
const seed = Number(process.env.PAYGRAPH_TEST_SEED ?? DEFAULT_SEED);
if (!Number.isSafeInteger(seed)) throw new Error(`PAYGRAPH_TEST_SEED must be an integer, got ${JSON.stringify(process.env.PAYGRAPH_TEST_SEED)}`);
fc.configureGlobal({ seed });
