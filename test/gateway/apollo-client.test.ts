/**
 * A real client: @apollo/client over HTTP for queries and mutations, and its graphql-ws link for
 * the ChargeAlerts subscription, all through the gateway.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { op } from '../helpers/contract.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let ws: Client;
let client: ApolloClient;

beforeAll(async () => {
  stack = await startTestStack();
  const token = await stack.token('alice');
  ws = createClient({
    url: stack.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: true,
    retryAttempts: 0,
  });
  const http = new HttpLink({ uri: stack.url, headers: { authorization: `Bearer ${token}`, 'apollographql-client-name': 'paygraph-tests' } });
  client = new ApolloClient({
    link: ApolloLink.split(({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION, new GraphQLWsLink(ws), http),
    cache: new InMemoryCache(),
  });
});
afterAll(async () => {
  client?.stop();
  await ws?.dispose();
  await stack?.stop();
});

interface Balances {
  me: { accounts: { id: string; kind: string; balance: { available: { amount: string } } }[] };
}

it('reads MyBalances, sends money and receives a charge alert like a real app', async () => {
  const before = await client.query<Balances>({ query: gql(op('MyBalances')), fetchPolicy: 'network-only' });
  const checking = before.data!.me.accounts.find((a) => a.kind === 'CHECKING')!;

  const sent = await client.mutate<{
    sendTransfer: { transfer: { id: string; amount: { amount: string }; recipient: { handle: string } } | null; userErrors: unknown[] };
  }>({
    mutation: gql(op('SendMoney')),
    variables: {
      input: { fromAccountId: checking.id, toHandle: 'bob', amount: { amount: '12.34', currency: 'USD' }, note: 'lunch', idempotencyKey: 'apollo-client-1' },
    },
  });
  expect(sent.data!.sendTransfer.userErrors).toEqual([]);
  expect(sent.data!.sendTransfer.transfer).toMatchObject({ amount: { amount: '12.34' }, recipient: { handle: 'bob' } });

  const after = await client.query<Balances>({ query: gql(op('MyBalances')), fetchPolicy: 'network-only' });
  const moved =
    BigInt(checking.balance.available.amount.replace('.', '')) -
    BigInt(after.data!.me.accounts.find((a) => a.id === checking.id)!.balance.available.amount.replace('.', ''));
  expect(moved).toBe(1234n);

  // Subscribe, and once the subscription is live make a suspicious card-not-present foreign purchase.
  const alert = new Promise<{ chargeAlertRaised: { reasons: string[]; purchase: { id: string; merchant: { name: string; country: string } } } }>(
    (resolve, reject) => {
      const sub = client.subscribe({ query: gql(op('ChargeAlerts')) }).subscribe({
        next: (r) => {
          if (r.error) reject(r.error);
          else if (r.data) {
            sub.unsubscribe();
            resolve(r.data as never);
          }
        },
        error: reject,
      });
    },
  );
  // Wait for the WebSocket connection (what a real app knows); the gateway's bridge delivers alerts
  // raised before its upstream subscription is set up too (test/alerts/live.test.ts).
  await new Promise<void>((resolve) => {
    const off = ws.on('connected', () => {
      off();
      resolve();
    });
  });
  const paid = await client.mutate<{ makePurchase: { purchase: { id: string } | null; userErrors: unknown[] } }>({
    mutation: gql(op('Pay')),
    variables: {
      input: {
        accountId: 'acc_alice_card',
        merchantId: 'mer_air_france',
        amount: { amount: '2950.00', currency: 'USD' },
        description: 'late-night booking',
        idempotencyKey: 'apollo-client-2',
        cardPresent: false,
      },
    },
  });
  expect(paid.data!.makePurchase.userErrors).toEqual([]);
  const raised = await alert;
  expect(raised.chargeAlertRaised.purchase.id).toBe(paid.data!.makePurchase.purchase!.id);
  expect(raised.chargeAlertRaised.purchase.merchant).toMatchObject({ name: 'Air France', country: 'FR' });
  expect(raised.chargeAlertRaised.reasons).toContain('FOREIGN_MERCHANT');
});

it('resumes with @apollo/client: subscribed again with the last cursor, it gets the alert raised while it was away, once', async () => {
  const listed = await client.query<{ chargeAlerts: { id: string; cursor: string }[] }>({
    query: gql('query LastAlert { chargeAlerts { id cursor } }'),
    fetchPolicy: 'network-only',
  });
  const last = listed.data!.chargeAlerts[0]!;
  // Raised while no subscription is open.
  const missed = await client.mutate<{ makePurchase: { purchase: { id: string } | null; userErrors: unknown[] } }>({
    mutation: gql(op('Pay')),
    variables: {
      input: {
        accountId: 'acc_alice_checking',
        merchantId: 'mer_air_france',
        amount: { amount: '1200.00', currency: 'USD' },
        idempotencyKey: 'apollo-client-3',
        cardPresent: false,
      },
    },
  });
  expect(missed.data!.makePurchase.userErrors).toEqual([]);
  const resumed = await new Promise<{ id: string; cursor: string; purchase: { id: string } }>((resolve, reject) => {
    const sub = client
      .subscribe<{ chargeAlertRaised: { id: string; cursor: string; purchase: { id: string } } }>({
        query: gql('subscription Resume($after: String) { chargeAlertRaised(after: $after) { id cursor purchase { id } } }'),
        variables: { after: last.cursor },
      })
      .subscribe({
        next: (r) => {
          if (r.error) reject(r.error);
          else if (r.data) {
            sub.unsubscribe();
            resolve(r.data.chargeAlertRaised);
          }
        },
        error: reject,
      });
  });
  expect(resumed.purchase.id).toBe(missed.data!.makePurchase.purchase!.id);
  expect(resumed.id).not.toBe(last.id);
});
