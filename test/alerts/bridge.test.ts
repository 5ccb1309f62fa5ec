/**
 * The subscription bridge against a subgraph that is down (gateway/subscription-bridge.ts): when the owning subgraph cannot
 * be reached, the client is told with a clear error and the subscription ends (no silent stall).
 */
import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { secretVerifier, signToken } from '../../lib/auth.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { close, listen } from '../../lib/http.js';
import { op } from '../helpers/contract.js';
import { signerOf } from '../helpers/signing.js';
import { TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';
import { subscribe, subscriptionErrors } from '../helpers/alerts.js';
import { expectGraphQLError } from '../helpers/matchers.js';
import { readSupergraph } from '../../schema/supergraph.js';
import { startGateway, type Gateway } from '../../gateway/index.js';
import type { DataAccessRecord } from '../../fence/audit-record.js';
import { silentLogger } from '../../lib/log.js';

let gateway: Gateway;
const audit: DataAccessRecord[] = [];

beforeAll(async () => {
  // A port with nothing listening: bind one, then close it.
  const probe = http.createServer();
  const dead = await listen(probe, 0);
  await close(probe);
  const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, `${dead}/graphql`])) as Record<SubgraphName, string>;
  gateway = await startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls,
    keys: { ...signerOf('gateway'), trust: {} },
    tokenVerifier: secretVerifier(TEST_JWT_SECRET),
    production: false,
    audit: async (r) => {
      audit.push(r);
    },
    upstreamRetryAttempts: 2,
    logger: silentLogger,
  });
});
afterAll(async () => {
  await gateway?.stop();
});

it('tells the client SUBGRAPH_UNAVAILABLE and ends the subscription when the subgraph stays down', async () => {
  const token = await signToken(TEST_JWT_SECRET, userId('alice'), 'payments');
  const sub = subscribe({ url: gateway.url } as TestStack, token, op('ChargeAlerts'));
  const err = expectGraphQLError(subscriptionErrors(await sub.next(20_000)), 'SUBGRAPH_UNAVAILABLE');
  expect(err.extensions).toMatchObject({ serviceName: 'alerts' });
  expect(err.message).toMatch(/alerts service is unavailable/);
  expect(gateway.subscriptions.active).toBe(0);
  // The subscription was audited as an allowed access to payment-only data.
  expect(audit.some((r) => r.decision === 'ALLOWED' && r.layer === 'subscription' && r.coordinates.includes('Subscription.chargeAlertRaised'))).toBe(true);
  await sub.dispose();
});
