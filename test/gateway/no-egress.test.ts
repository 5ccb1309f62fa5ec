/**
 * No egress: a whole stack (gateway and five subgraphs) connects only to loopback while it starts,
 * serves queries, mutations and a subscription, and stops. @apollo/gateway would start an
 * OpenTelemetry exporter that sends usage data to Apollo and probes cloud metadata services
 * unless APOLLO_TELEMETRY_DISABLED is set: the project must set it itself, so the test unsets it
 * first. Every TCP connection attempt of this process goes through the egress guard
 * (lib/egress-guard.mjs, loaded by test/helpers/setup.ts), which counts the loopback ones and
 * refuses and records any other. Other processes: test/foundation/egress-guard.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { egressGuard } from '../../lib/egress-guard.mjs';
import { subscribe } from '../helpers/alerts.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let allowedBefore = 0;

beforeAll(async () => {
  delete process.env.APOLLO_TELEMETRY_DISABLED;
  allowedBefore = egressGuard().allowed;
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

it('connects to nothing but loopback, and sets APOLLO_TELEMETRY_DISABLED itself', async () => {
  expect(process.env.APOLLO_TELEMETRY_DISABLED).toBe('true');
  const token = await stack.token('alice', 'payments');
  const sub = subscribe(stack, token, 'subscription { chargeAlertRaised { id riskScore } }');
  await expect.poll(() => stack.gateway.subscriptions.live, { timeout: 10_000 }).toBe(1);
  const balances = await stack.gql('{ me { accounts { id balance { current { amount currency } } } } }', undefined, token);
  expect(balances.errors).toBeUndefined();
  const accounts = (balances.data as { me: { accounts: { id: string }[] } }).me.accounts;
  const sent = await stack.gql(
    'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }',
    { input: { fromAccountId: accounts[0]!.id, toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: randomUUID() } },
    token,
  );
  expect(sent.errors).toBeUndefined();
  await sub.dispose();
  expect(egressGuard().allowed).toBeGreaterThan(allowedBefore); // the guard saw the stack's own calls
  expect(egressGuard().blocked).toEqual([]);
});
