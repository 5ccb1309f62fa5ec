/** GraphQL over HTTP: graphql-http's server audit against the gateway. Every MUST passes. */
import { auditServer } from 'graphql-http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/**
 * SHOULDs we knowingly do not meet (listed in the README): Apollo Server answers 400 rather than
 * 200 for parse, validation and variable-coercion failures when the client accepts only
 * application/json. Clients that accept application/graphql-response+json get exactly what the
 * spec asks for.
 */
const KNOWN_SHOULD_FAILURES = [
  'SHOULD use 200 status code on document parsing failure when accepting application/json',
  'SHOULD use 200 status code on document validation failure when accepting application/json',
  'SHOULD use a status code of 200 on variable coercion failure when accepting application/json',
];

it('passes every MUST of the GraphQL-over-HTTP server audit', async () => {
  const results = await auditServer({ url: stack.url });
  expect(results.length).toBeGreaterThan(50);
  const mustFailures = results.filter((r) => r.name.startsWith('MUST') && r.status !== 'ok').map((r) => r.name);
  expect(mustFailures).toEqual([]);
  const shouldFailures = results.filter((r) => r.name.startsWith('SHOULD') && r.status !== 'ok').map((r) => r.name);
  expect(shouldFailures.sort()).toEqual([...KNOWN_SHOULD_FAILURES].sort());
});
