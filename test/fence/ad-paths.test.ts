/**
 * No ad fetch through a protected path: an operation that reaches an advertising field (one only
 * the ads subgraph resolves, e.g. User.sponsoredOffers) through a payment-only field would make the
 * gateway send ads the people a user transacts with. It is refused to every caller, payments
 * included, with FORBIDDEN_DATA_USE naming the path, before any subgraph is called, and audited.
 */
import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyFromSupergraph } from '../../fence/operation-check.js';
import { checkQueryPlan } from '../../fence/plan-check.js';
import { readSupergraph } from '../../schema/supergraph.js';
import { adsUserFetch } from '../helpers/bad-supergraph.js';
import { expectData, expectGraphQLError, expectNothingMoved, expectUnseen } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let pay: string;
const calls: Record<string, number> = {};

beforeAll(async () => {
  stack = await startTestStack();
  pay = await stack.token('alice', 'payments');
  for (const name of ['accounts', 'payments', 'ads'] as const) {
    calls[name] = 0;
    stack.subgraphs[name].server.on('request', (req: { url?: string }) => {
      if (req.url?.startsWith('/graphql')) calls[name]! += 1;
    });
  }
});
afterAll(async () => {
  await stack?.stop();
});

function resetCalls(): void {
  for (const k of Object.keys(calls)) calls[k] = 0;
}

async function refusedPaths(query: string, variables?: Record<string, unknown>): Promise<string[]> {
  resetCalls();
  const r = await stack.gql(query, variables, pay);
  const err = expectGraphQLError(r, 'FORBIDDEN_DATA_USE', { status: 403, noData: true });
  // Decided before any subgraph was called: nothing reached payments, accounts or ads.
  expect(calls).toEqual({ accounts: 0, payments: 0, ads: 0 });
  return (err.extensions as { paths: string[] }).paths;
}

describe('advertising fields under payment-only data are refused to every caller', () => {
  it('the counterparties of a history (Transaction.counterparty -> User.sponsoredOffers)', async () => {
    const paths = await refusedPaths(
      'query Graph { account(id: "acc_alice_checking") { transactions(first: 40) { edges { node { counterparty { sponsoredOffers { id } } } } } } }',
    );
    expect(paths).toEqual(['Transaction.counterparty → User.sponsoredOffers']);
    const rows = await stack.dbs.accounts('data_access_log').where({ operation_name: 'Graph' }).select('decision', 'purpose', 'coordinates');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ decision: 'REFUSED', purpose: 'payments' });
    expect(JSON.parse((rows[0] as { coordinates: string }).coordinates)).toContain('User.sponsoredOffers');
  });

  it('through a fragment, an inline fragment and an alias', async () => {
    const paths = await refusedPaths(
      'query { account(id: "acc_alice_checking") { transactions(first: 5) { edges { node { ... on Transaction { who: counterparty { ...Ads } } } } } } } fragment Ads on User { o: sponsoredOffers { id } }',
    );
    expect(paths).toEqual(['Transaction.counterparty → User.sponsoredOffers']);
  });

  it('the recipient of a transfer, at the moment it is sent: refused, and nothing moves', async () => {
    const { data } = await stack.gql<{ me: { accounts: { id: string }[] } }>('{ me { accounts { id } } }', undefined, pay);
    const from = data!.me.accounts[0]!.id;
    await expectNothingMoved(stack.dbs.payments, async () => {
      const paths = await refusedPaths(
        'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { transfer { id recipient { sponsoredOffers { id } } } userErrors { code } } }',
        { input: { fromAccountId: from, toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: randomUUID() } },
      );
      expect(paths).toEqual(['Transfer.recipient → User.sponsoredOffers']);
    });
  });

  it('an advertising caller is refused too, without learning the path exists', async () => {
    const ads = await stack.token('alice', 'advertising');
    const r = await stack.gql(
      '{ account(id: "acc_alice_checking") { transactions(first: 1) { edges { node { counterparty { sponsoredOffers { id } } } } } } }',
      undefined,
      ads,
    );
    expectUnseen(r);
  });
});

describe('advertising fields beside payment-only data, not under it, still work', () => {
  it("the caller's own offers next to their accounts", async () => {
    const d = expectData(await stack.gql('{ me { id accounts { id } sponsoredOffers { id } } }', undefined, pay)) as { me: { sponsoredOffers: unknown[] } };
    expect(d.me.sponsoredOffers.length).toBeGreaterThan(0);
  });
});

describe('layer 3 on its own: a fetch to ads whose representations come from a payment-only path', () => {
  const policy = policyFromSupergraph(readSupergraph());
  const adsFetch = (path: string[]) => adsUserFetch(path, 'sponsoredOffers{id}');

  it('is a violation even when layer 2 was not asked (pure check over the plan and its operation)', () => {
    const document = parse('query { account(id: "a") { history: transactions(first: 5) { edges { node { counterparty { sponsoredOffers { id } } } } } } }');
    const plan = { kind: 'QueryPlan' as const, node: adsFetch(['account', 'history', 'edges', '@', 'node', 'counterparty']) };
    expect(checkQueryPlan(policy, plan, document)).toEqual([{ serviceName: 'ads', where: 'path', coordinates: ['Query.account'] }]);
  });

  it("is none for the caller's own offers (Query.me is not payment-only)", () => {
    const document = parse('query { me { sponsoredOffers { id } } }');
    const plan = { kind: 'QueryPlan' as const, node: adsFetch(['me']) };
    expect(checkQueryPlan(policy, plan, document)).toEqual([]);
  });
});
