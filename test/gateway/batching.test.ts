/**
 * Batching: one DataLoader set per request, and "transactions of many accounts" is one query. The
 * same operation over 5 and over 50 accounts must run the same number of SQL statements.
 */
import type { Knex } from 'knex';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { AUDIT_LOG_SQL, startTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/stack.js';

const OPERATION = `query ManyAccounts {
  me {
    handle
    accounts {
      id displayName mask institution { name }
      balance { available { amount currency } current { amount currency } }
      transactions(first: 3) {
        totalCount
        edges { cursor node { id amount { amount } merchant { name country } counterparty { handle } } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}`;

let stack: TestStack;

/** A user with `n` linked accounts, each with four postings against merchants and other users. */
async function addUserWithAccounts(accounts: Knex, payments: Knex, handle: string, n: number): Promise<void> {
  const userId = `usr_${handle}`;
  await accounts('users').insert({ id: userId, handle, name: `Test ${handle}`, country: 'US' });
  await payments('parties').insert({ user_id: userId, handle, country: 'US' });
  // The user's consent to both institutions, as a grant stores it (subgraphs/accounts/consent/).
  for (const institution of ['ins_chase', 'ins_citi']) {
    await accounts('consents').insert({
      id: `cns_${handle}_${institution}`,
      user_id: userId,
      institution_id: institution,
      scopes: JSON.stringify(['ACCOUNT_DETAILS', 'BALANCES', 'MONEY_MOVEMENT', 'TRANSACTIONS']),
      purpose: 'PAYMENTS',
      disclosure_version: 'test',
      granted_at: new Date(Date.now() - 86_400_000).toISOString(),
      expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      idempotency_key: `test-${institution}`,
      request_hash: '0'.repeat(64),
    });
  }
  for (let i = 0; i < n; i++) {
    const id = `acc_${handle}_${i}`;
    await accounts('accounts').insert({
      id,
      user_id: userId,
      institution_id: i % 2 ? 'ins_chase' : 'ins_citi',
      kind: 'CHECKING',
      display_name: `Account ${i}`,
      mask: String(1000 + i),
      currency: 'USD',
    });
    await payments('ledger_accounts').insert({ id, owner_user_id: userId, kind: 'CHECKING', currency: 'USD', balance_minor: 4 * 1000, frozen: false });
    for (let k = 0; k < 4; k++) {
      const entryId = `je_${id}_${k}`;
      const at = new Date(Date.UTC(2026, 9, 1 + k, 12, i % 60)).toISOString();
      await payments('journal_entries').insert({ id: entryId, kind: k % 2 ? 'PURCHASE' : 'TRANSFER', description: `entry ${k}`, posted_at: at });
      await payments('postings').insert([
        {
          entry_id: entryId,
          account_id: id,
          amount_minor: 1000,
          currency: 'USD',
          posted_at: at,
          merchant_id: k % 2 ? 'mer_tesco' : null,
          counterparty_user_id: k % 2 ? null : 'usr_bob',
        },
        {
          entry_id: entryId,
          account_id: 'sys_external_usd',
          amount_minor: -1000,
          currency: 'USD',
          posted_at: at,
          merchant_id: null,
          counterparty_user_id: null,
        },
      ]);
    }
  }
}

beforeAll(async () => {
  stack = await startTestStack();
  await addUserWithAccounts(stack.dbs.accounts, stack.dbs.payments, 'five', 5);
  await addUserWithAccounts(stack.dbs.accounts, stack.dbs.payments, 'fifty', 50);
});
afterAll(async () => {
  await stack?.stop();
});

async function statementsFor(handle: string, expectedAccounts: number): Promise<number> {
  const token = await signToken(TEST_JWT_SECRET, `usr_${handle}`, 'payments');
  let data: { me: { accounts: { transactions: { totalCount: number; edges: { node: { merchant: unknown; counterparty: unknown } }[] } }[] } } | undefined;
  // The read path only: not the audit trail's one append per operation, nor the alerts worker
  // polling the payments outbox in the background.
  const n = await stack.countQueries(
    async () => {
      const res = await stack.gql<NonNullable<typeof data>>(OPERATION, {}, token);
      expect(res.errors).toBeUndefined();
      data = res.data!;
    },
    ['accounts', 'payments', 'merchants'],
    (sql) => !AUDIT_LOG_SQL.test(sql) && !/outbox_events/i.test(sql),
  );
  expect(data!.me.accounts).toHaveLength(expectedAccounts);
  for (const a of data!.me.accounts) {
    expect(a.transactions.totalCount).toBe(4);
    expect(a.transactions.edges).toHaveLength(3);
    expect(a.transactions.edges.some((e) => e.node.merchant !== null)).toBe(true);
    expect(a.transactions.edges.some((e) => e.node.counterparty !== null)).toBe(true);
  }
  return n;
}

it('runs the same number of SQL statements for 5 and for 50 accounts', async () => {
  const five = await statementsFor('five', 5);
  const fifty = await statementsFor('fifty', 50);
  expect(fifty).toBe(five);
  // user, accounts, institutions, ledger accounts, one page query, one count query, counterparties,
  // merchants; consent: the user's consents for the accounts' own fields, and the payments
  // subgraph's one check (its accounts and the user's consents)
  expect(five).toBeLessThanOrEqual(11);
});

it('loads the transactions of many accounts in one windowed query', async () => {
  const token = await signToken(TEST_JWT_SECRET, 'usr_fifty', 'payments');
  const sql: string[] = [];
  const listener = (q: { sql: string }) => sql.push(q.sql);
  stack.dbs.payments.on('query', listener);
  try {
    await stack.gql(OPERATION, {}, token);
  } finally {
    stack.dbs.payments.off('query', listener);
  }
  const pageQueries = sql.filter((s) => /row_number\(\) over/i.test(s));
  expect(pageQueries).toHaveLength(1);
});
