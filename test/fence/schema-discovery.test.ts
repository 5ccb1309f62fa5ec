/**
 * Schema discovery: a caller whose purpose is not `payments` (advertising, anonymous) is validated
 * against the contract schema, the API without payment-only types and fields. Whatever it sends,
 * its errors read as if the payment-only part of the API did not exist: no payment-only type, no
 * field of one, no input field, no suggestion. The same documents with a payments token get the
 * full API's errors (or data), and every refusal that selected payment-only data is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribe, subscriptionErrors } from '../helpers/alerts.js';
import { expectData, expectGraphQLError, expectUnseen } from '../helpers/matchers.js';
import { postGraphQL, startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let ads: string;
let pay: string;

beforeAll(async () => {
  stack = await startTestStack();
  ads = await stack.token('alice', 'advertising');
  pay = await stack.token('alice', 'payments');
});

afterAll(async () => {
  await stack?.stop();
});

function post(query: string, token: string | null, variables?: Record<string, unknown>) {
  return postGraphQL<unknown>(stack.url, { query, variables }, token ? { authorization: `Bearer ${token}` } : {});
}

/** Documents whose full-API errors name payment-only types or input fields (measured in the issue). */
const REVEALING: { name: string; query: string; variables?: Record<string, unknown>; full: RegExp }[] = [
  { name: 'a protected field without a selection', query: '{ me { accounts } }', full: /\[Account!\]!/ },
  {
    name: 'a protected input type in a variable, with an incomplete value',
    query: 'mutation M($i: SendTransferInput!) { sendTransfer(input: $i) { userErrors { code } } }',
    variables: { i: { toHandle: 'bob' } },
    full: /fromAccountId/,
  },
  {
    name: 'a mutation with an incomplete input',
    query: 'mutation { sendTransfer(input: { toHandle: "bob" }) { userErrors { code } } }',
    full: /fromAccountId|SendTransferInput/,
  },
  { name: 'a misspelt protected field', query: '{ me { acounts { id } } }', full: /Cannot query field "acounts" on type "User"/ },
  { name: 'a protected type in a fragment', query: '{ me { id } } fragment F on Account { mask }', full: /F/ },
];

describe('non-payments callers get the contract schema errors', () => {
  for (const doc of REVEALING) {
    it(`${doc.name}: the full API's error for payments, the contract's for advertising and anonymous`, async () => {
      const full = await post(doc.query, pay, doc.variables);
      expect((full.errors ?? []).map((e) => e.message).join('\n')).toMatch(doc.full);
      for (const token of [ads, null]) {
        const r = await post(doc.query, token, doc.variables);
        expectUnseen(r);
        expect(r.text).not.toMatch(/fromAccountId|\[Account/);
      }
    });
  }

  it('a document valid on the full API, already validated for a payments caller (Apollo caches it), is still refused', async () => {
    const query = 'query Cached { me { accounts { id } } }';
    expectData(await post(query, pay));
    const r = await post(query, ads);
    expectUnseen(r);
    expect(r.errors![0]!.message).toBe('Cannot query field "accounts" on type "User".');
  });

  it('mutations and subscriptions do not exist for them; their own fields still work', async () => {
    const m = await post('mutation { __typename }', ads);
    expect(expectUnseen(m)[0]!.message).toBe('Schema is not configured to execute mutation operation.');
    expectData(await post('mutation { __typename }', pay));
    expectData(await post('{ me { id sponsoredOffers { id } } }', ads));
  });

  it('over WebSocket too', async () => {
    const sub = subscribe(stack, ads, 'subscription { chargeAlertRaised { id account { mask } } }');
    const errors = subscriptionErrors(await sub.next());
    await sub.dispose();
    expectUnseen(errors);
  });

  it('the refusals are audited with the protected coordinates they selected', async () => {
    const r = await post('query ProbeAccounts { me { accounts } }', ads);
    const [first] = expectUnseen(r);
    const row = await stack.dbs.accounts('data_access_log').where({ request_id: first!.extensions!.requestId }).first();
    expect(row).toMatchObject({ operation_name: 'ProbeAccounts', decision: 'REFUSED', purpose: 'advertising' });
    expect(JSON.parse(row.coordinates)).toContain('User.accounts');
  });

  it('a document that touches no payment-only data is not audited, only refused', async () => {
    const r = await post('query Typo { merchantz(first: 1) { id } }', null);
    expectGraphQLError(r, 'GRAPHQL_VALIDATION_FAILED', { status: 400 });
    expect(await stack.dbs.accounts('data_access_log').where({ operation_name: 'Typo' })).toHaveLength(0);
  });
});
