/**
 * npm run -s audit:verify -- --url <gateway origin> --state <file> [--entries]: the witness a bank
 * runs on a schedule (lib/transparency/witness.ts, docs/audit.md). Exit 0 with a one-line
 * summary; exit 1 naming the first inconsistency (bad signature, inconsistent tree, leaf mismatch
 * at index i) or why the log could not be checked; exit 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import { fail, say } from '../lib/cli.js';
import { runWitness } from '../lib/transparency/witness.js';

const USAGE = 'usage: npm run -s audit:verify -- --url <gateway origin, e.g. http://127.0.0.1:4000> --state <file> [--entries]';
let values: { url?: string; state?: string; entries?: boolean };
try {
  ({ values } = parseArgs({ options: { url: { type: 'string' }, state: { type: 'string' }, entries: { type: 'boolean' } } }));
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`, 2);
}
if (!values.url || !values.state) fail(USAGE, 2);
const result = await runWitness({ url: values.url, statePath: values.state, entries: values.entries === true });
if (!result.ok) fail(result.message, 1);
say(result.message);
