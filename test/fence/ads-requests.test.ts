/**
 * What the advertising zone is told, byte for byte: every request body the gateway sends to the
 * ads subgraph is recorded while alice runs every contract operation (queries and mutations, with
 * her payments token) and the two queries that would tell ads whom she pays. No id of any user
 * other than the caller may appear in any of them, and the two queries must not reach ads at all.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildFixture } from '../../seeds/fixture.js';
import { OPS } from '../helpers/contract.js';
import { expectGraphQLError } from '../helpers/matchers.js';
import { startTestStack, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
const bodies: string[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  stack.subgraphs.ads.server.on('request', (req: import('node:http').IncomingMessage) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => bodies.push(Buffer.concat(chunks).toString('utf8')));
  });
});
afterAll(async () => {
  await stack?.stop();
});

/** Every id and handle of a seeded user other than alice (and their accounts), as they would appear in a body. */
function othersIdentifiers(): string[] {
  const f = buildFixture();
  const alice = userId('alice');
  return [...f.users.filter((u) => u.id !== alice).flatMap((u) => [u.id, u.handle]), ...f.accounts.filter((a) => a.userId !== alice).map((a) => a.id)];
}

it('the contract operations send ads nothing about anyone but the caller, and the ad paths send it nothing at all', async () => {
  const token = await stack.token('alice', 'payments');
  const me = await stack.gql<{ me: { accounts: { id: string }[] } }>('{ me { accounts { id } } }', undefined, token);
  const [checking, card] = me.data!.me.accounts.map((a) => a.id);
  const variables: Record<string, Record<string, unknown>> = {
    History: { accountId: checking, first: 40 },
    SendMoney: {
      input: { fromAccountId: checking, toHandle: 'bob', amount: { amount: '2.00', currency: 'USD' }, note: 'lunch', idempotencyKey: randomUUID() },
    },
    Pay: {
      input: { accountId: card, merchantId: 'mer_safeway', amount: { amount: '3.00', currency: 'USD' }, cardPresent: true, idempotencyKey: randomUUID() },
    },
    ResolveAlert: { id: 'alt_none', fraudulent: false },
    Merchants: { first: 5 },
  };
  for (const [name, text] of Object.entries(OPS)) {
    if (text.startsWith('subscription')) continue; // over WebSocket: no body to ads (its plan has no ads fetch)
    const r = await stack.gql(text, variables[name], token);
    expect(r.status, name).toBeLessThan(500);
  }
  // Offers is the one contract operation that needs ads, and it did reach it.
  expect(bodies.length).toBeGreaterThan(0);

  const before = bodies.length;
  for (const query of [
    '{ account(id: "acc_alice_checking") { transactions(first: 40) { edges { node { counterparty { sponsoredOffers { id } } } } } } }',
    'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { transfer { recipient { sponsoredOffers { id } } } userErrors { code } } }',
  ]) {
    const r = await stack.gql(
      query,
      { input: { fromAccountId: checking, toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: randomUUID() } },
      token,
    );
    const err = expectGraphQLError(r, 'FORBIDDEN_DATA_USE', { status: 403, noData: true });
    expect((err.extensions as { paths: string[] }).paths[0]).toMatch(/→ User\.sponsoredOffers$/);
  }
  expect(bodies.length).toBe(before);

  const leaks = othersIdentifiers().filter((id) => bodies.some((b) => new RegExp(`(?<![\\w-])${id}(?![\\w-])`).test(b)));
  expect(leaks).toEqual([]);
  // What ads did get: alice's own user reference, nothing else of hers.
  for (const b of bodies) expect(b).not.toMatch(/acc_|trf_|pur_|"amount"|mask/);
});
