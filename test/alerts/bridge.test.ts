/**
 * The subscription bridge on its own (gateway/subscriptions.ts): when the owning subgraph cannot
 * be reached, the client is told with a clear error and the subscription ends (no silent stall).
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { close, listen } from '../../lib/http.js';
import { SUPERGRAPH_PATH } from '../../lib/stack.js';
import { serveSubscriptions, type SubscriptionServer } from '../../gateway/subscriptions.js';
import type { DataAccessRecord } from '../../lib/policy.js';
import { op } from '../helpers/contract.js';
import { TEST_GATEWAY_SECRET, TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';
import { subscribe, subscriptionErrors } from '../helpers/alerts.js';
import { expectGraphQLError } from '../helpers/matchers.js';

let server: http.Server;
let subs: SubscriptionServer;
let url: string;
const audit: DataAccessRecord[] = [];

beforeAll(async () => {
  // A port with nothing listening: bind one, then close it.
  const probe = http.createServer();
  const dead = await listen(probe, 0);
  await close(probe);
  const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, `${dead}/graphql`])) as Record<SubgraphName, string>;
  server = http.createServer((_req, res) => res.end());
  subs = serveSubscriptions({
    server,
    supergraphSdl: fs.readFileSync(SUPERGRAPH_PATH, 'utf8'),
    subgraphUrls,
    gatewaySecret: TEST_GATEWAY_SECRET,
    jwtSecret: TEST_JWT_SECRET,
    production: false,
    audit: async (r) => {
      audit.push(r);
    },
    upstreamRetryAttempts: 2,
  });
  url = await listen(server, 0);
});
afterAll(async () => {
  await subs?.dispose();
  if (server) await close(server);
});

it('tells the client SUBGRAPH_UNAVAILABLE and ends the subscription when the subgraph stays down', async () => {
  const token = await signToken(TEST_JWT_SECRET, userId('alice'), 'payments');
  const sub = subscribe({ url: `${url}/graphql` } as TestStack, token, op('ChargeAlerts'));
  const err = expectGraphQLError(subscriptionErrors(await sub.next(20_000)), 'SUBGRAPH_UNAVAILABLE');
  expect(err.extensions).toMatchObject({ serviceName: 'alerts' });
  expect(err.message).toMatch(/alerts service is unavailable/);
  expect(subs.active).toBe(0);
  // The subscription was audited as an allowed access to payment-only data.
  expect(audit.some((r) => r.decision === 'ALLOWED' && r.layer === 'subscription' && r.coordinates.includes('Subscription.chargeAlertRaised'))).toBe(true);
  await sub.dispose();
});
