/**
 * Set-up of every test file (vitest.config.ts `setupFiles`). Property tests (fast-check) draw their
 * cases from a fixed seed, so that every run checks the same cases and a failure is reproduced by
 * running again; PAYGRAPH_TEST_SEED=<integer> explores other cases (fast-check prints the seed and
 * path of any counterexample it finds).
 */
import fc from 'fast-check';

const DEFAULT_SEED = 20_261_201;
const seed = Number(process.env.PAYGRAPH_TEST_SEED ?? DEFAULT_SEED);
if (!Number.isSafeInteger(seed)) throw new Error(`PAYGRAPH_TEST_SEED must be an integer, got ${JSON.stringify(process.env.PAYGRAPH_TEST_SEED)}`);
fc.configureGlobal({ seed });
