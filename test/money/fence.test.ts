/**
 * Who may move money is the fence's decision, not the resolvers': a gateway-signed request straight
 * to the payments subgraph whose caller's purpose is not `payments` is refused by the subgraph's
 * fence plugin (layer 4, from the @paymentOnly marks on the mutation fields and payloads) before
 * any resolver runs, and nothing moves. A payments caller is served (control).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth.js';
import { signGraphQL } from '../helpers/signing.js';
import { startTestStack, userId, type TestStack } from '../helpers/stack.js';
import { newKey, snapshot } from '../helpers/money.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const alice = (purpose: Caller['purpose']): Caller => ({ userId: userId('alice'), purpose, client: null });

interface Answer {
  data?: Record<string, { userErrors: { code: string }[] } | null> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** A gateway-signed GraphQL request straight to the payments subgraph. */
async function direct(caller: Caller, query: string, variables: Record<string, unknown>): Promise<{ status: number; json: Answer }> {
  const body = JSON.stringify({ query, variables });
  const res = await fetch(stack.subgraphs.payments.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await signGraphQL('payments', caller, body)) },
    body,
  });
  return { status: res.status, json: (await res.json()) as Answer };
}

const SEND = 'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }';
const PAY = 'mutation($input: MakePurchaseInput!) { makePurchase(input: $input) { userErrors { code } } }';
const transfer = () => ({ fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: newKey() });
const purchase = () => ({ accountId: 'acc_alice_card', merchantId: 'mer_zara', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: newKey() });

describe('payments subgraph: money-moving mutations are refused to non-payments callers by the fence', () => {
  for (const [field, query, input] of [
    ['sendTransfer', SEND, transfer],
    ['makePurchase', PAY, purchase],
  ] as const) {
    it(`Mutation.${field} with purpose "advertising": FORBIDDEN_DATA_USE from the fence, nothing moves`, async () => {
      const before = await snapshot(stack.dbs.payments);
      const { status, json } = await direct(alice('advertising'), query, { input: input() });
      expect(status).toBe(403);
      expect(json.data ?? null).toBeNull();
      const err = json.errors?.[0];
      expect(err?.extensions?.code, JSON.stringify(json)).toBe('FORBIDDEN_DATA_USE');
      // Refused by the subgraph's fence plugin (layer 4), not by a resolver.
      expect(err?.extensions?.fence).toBe('payments');
      expect(err?.extensions?.coordinates).toContain(`Mutation.${field}`);
      expect(await snapshot(stack.dbs.payments)).toEqual(before);
    });

    it(`Mutation.${field} with purpose "payments": served (control)`, async () => {
      const { json } = await direct(alice('payments'), query, { input: input() });
      expect(json.errors, JSON.stringify(json)).toBeUndefined();
      expect(json.data?.[field]?.userErrors).toEqual([]);
    });
  }
});
