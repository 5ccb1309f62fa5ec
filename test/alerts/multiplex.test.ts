/**
 * The gateway multiplexes its subscriptions upstream: however many clients subscribe, it holds
 * one graphql-ws connection per alerts process, each subscription on it carrying its own signed
 * grant. 20 users x 10 subscriptions (20 client sockets, 200 subscriptions) cost one upstream
 * socket, counted on both sides (the gateway's pool, the alerts endpoint's acknowledged
 * connections), and an alert still reaches each of its owner's subscriptions once, and nobody else.
 *
 * PAYGRAPH_TEST_SUBSCRIBERS=<n> (a multiple of 10) runs it with n subscriptions instead of 200:
 * the socket counts are printed, which is how the figure for 1,000 in docs/alerts.md was measured.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { DEFAULT_MAX_SUBSCRIPTIONS_PER_USER } from '../../gateway/subscription-server.js';
import { alertsStatus, pay, SUSPICIOUS, wsUrlOf } from '../helpers/alerts.js';
import { startTestStack, TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const SUBSCRIBERS = Number(process.env.PAYGRAPH_TEST_SUBSCRIBERS ?? 200);
const PER_USER = DEFAULT_MAX_SUBSCRIPTIONS_PER_USER;
const USERS = SUBSCRIBERS / PER_USER;
const QUERY = 'subscription Mux { chargeAlertRaised { id purchase { id } } }';

let stack: TestStack;
const clients: Client[] = [];
beforeAll(async () => {
  expect(Number.isInteger(USERS) && USERS >= 1, 'PAYGRAPH_TEST_SUBSCRIBERS must be a multiple of 10').toBe(true);
  stack = await startTestStack({ logLevel: 'warn' });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await stack?.stop();
});

it(`${SUBSCRIBERS} subscriptions of ${USERS} users share one upstream socket, and each alert reaches its owner's subscriptions once`, async () => {
  // alice is one of the users: her alert is the one checked; the others are users without alerts.
  const users = ['alice', ...Array.from({ length: USERS - 1 }, (_, i) => `usr_mux_${i}`)].map((u) => (u === 'alice' ? userId('alice') : u));
  const received = new Map<string, string[][]>();
  const errors: unknown[] = [];
  for (const user of users) {
    const token = await signToken(TEST_JWT_SECRET, user, 'payments');
    // One client socket per user, holding the most subscriptions a user may.
    const client = createClient({
      url: wsUrlOf(stack.url),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    clients.push(client);
    const lists: string[][] = [];
    received.set(user, lists);
    for (let i = 0; i < PER_USER; i++) {
      const got: string[] = [];
      lists.push(got);
      client.subscribe(
        { query: QUERY },
        {
          next: (v) =>
            v.errors ? errors.push(v.errors) : got.push((v.data as { chargeAlertRaised: { purchase: { id: string } } }).chargeAlertRaised.purchase.id),
          error: (e) => errors.push(e),
          complete: () => errors.push('completed'),
        },
      );
    }
  }
  await waitFor(() => stack.gateway.subscriptions.live === SUBSCRIBERS || errors.length > 0, `${SUBSCRIBERS} live subscriptions`, 120_000);
  await waitFor(async () => (await alertsStatus(stack)).bus.subscriptions === SUBSCRIBERS || errors.length > 0, `${SUBSCRIBERS} streams at alerts`, 60_000);
  expect(errors).toEqual([]);

  // One upstream socket, seen from both ends.
  const status = await alertsStatus(stack);
  process.stdout.write(
    `multiplexing: ${SUBSCRIBERS} subscriptions on ${users.length} client sockets -> gateway upstream sockets ${stack.gateway.subscriptions.upstreamSockets}, alerts endpoint connections ${status.endpoint.connections}\n`,
  );
  expect(stack.gateway.subscriptions.upstreamSockets).toBe(1);
  expect(status.endpoint.connections).toBe(1);

  // Each subscription still has its own caller: alice's alert reaches her 10 subscriptions once each, and no one else's.
  const alice = await stack.token('alice');
  const p = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
  expect(p.userErrors).toEqual([]);
  const aliceLists = received.get(userId('alice'))!;
  await waitFor(() => aliceLists.every((l) => l.length >= 1), "alice's alert on each of her subscriptions");
  expect(aliceLists).toEqual(Array.from({ length: PER_USER }, () => [p.purchase!.id]));
  for (const [user, lists] of received) if (user !== userId('alice')) expect(lists.flat(), user).toEqual([]);
  expect(errors).toEqual([]);
}, 240_000);
