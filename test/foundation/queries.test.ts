/** The foundation through the gateway: contract queries, joins, pagination, auth and bad input. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { buildFixture } from '../../seeds/fixture.js';
import { op } from '../helpers/contract.js';
import { expectData, expectGraphQLError, expectNoLeak } from '../helpers/matchers.js';
import { randomSecret, startTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let alice: string;
beforeAll(async () => {
  stack = await startTestStack();
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
});

interface Money {
  amount: string;
  currency: string;
}
interface MyBalances {
  me: {
    id: string;
    handle: string;
    accounts: {
      id: string;
      kind: string;
      mask: string;
      currency: string;
      institution: { name: string; kind: string };
      balance: { available: Money; current: Money; asOf: string };
    }[];
  };
}
interface Txn {
  id: string;
  kind: string;
  direction: string;
  amount: Money;
  postedAt: string;
  merchant: { id: string; name: string; country: string } | null;
  counterparty: { id: string; handle: string } | null;
}
interface History {
  account: {
    id: string;
    transactions: { totalCount: number; edges: { cursor: string; node: Txn }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
  } | null;
}

/** Balance of an account straight from the fixture, in minor units. */
function fixtureBalance(accountId: string): bigint {
  let sum = 0n;
  for (const e of buildFixture().entries) for (const p of e.postings) if (p.accountId === accountId) sum += p.amountMinor;
  return sum;
}

describe('MyBalances', () => {
  it('returns the caller, their accounts, institutions and ledger balances', async () => {
    const res = await stack.gql<MyBalances>(op('MyBalances'), {}, alice);
    expect(res.errors).toBeUndefined();
    const me = res.data!.me;
    expect(me).toMatchObject({ id: 'usr_alice', handle: 'alice' });
    expect(me.accounts.map((a) => a.kind).sort()).toEqual(['CHECKING', 'CREDIT_CARD']);
    const checking = me.accounts.find((a) => a.kind === 'CHECKING')!;
    expect(checking).toMatchObject({ mask: '4821', currency: 'USD', institution: { name: 'JPMorgan Chase', kind: 'BANK' } });
    const expected = fixtureBalance('acc_alice_checking');
    expect(checking.balance.current).toEqual({ amount: `${expected / 100n}.${String(expected % 100n).padStart(2, '0')}`, currency: 'USD' });
    expect(checking.balance.available).toEqual(checking.balance.current);
    const card = me.accounts.find((a) => a.kind === 'CREDIT_CARD')!;
    expect(card.institution).toMatchObject({ name: 'American Express', kind: 'CARD_ISSUER' });
    // Card: current is what is owed, available is limit minus owed; amounts are exact decimal strings.
    const owed = -fixtureBalance('acc_alice_card');
    expect(card.balance.current.amount).toBe(`${owed / 100n}.${String(owed % 100n).padStart(2, '0')}`);
    expect(BigInt(card.balance.available.amount.replace('.', '')) + BigInt(card.balance.current.amount.replace('.', ''))).toBe(500000n);
    expect(Number.isNaN(Date.parse(card.balance.asOf))).toBe(false);
  });

  it('gives every seeded user their own accounts only', async () => {
    for (const handle of ['bob', 'carol', 'dave']) {
      const res = await stack.gql<MyBalances>(op('MyBalances'), {}, await stack.token(handle));
      // dave revoked his consent to his bank (seeds/fixture.ts REVOKED_SEED_CONSENT): that account's data is CONSENT_REQUIRED.
      if (handle === 'dave')
        expect(new Set(res.errors?.map((e) => `${e.extensions?.code} ${e.path?.at(-1)}`))).toEqual(
          new Set(['CONSENT_REQUIRED displayName', 'CONSENT_REQUIRED mask', 'CONSENT_REQUIRED balance']),
        );
      else expect(res.errors).toBeUndefined();
      expect(res.data!.me.handle).toBe(handle);
      expect(res.data!.me.accounts.map((a) => a.id).sort()).toEqual([`acc_${handle}_card`, `acc_${handle}_checking`]);
    }
  });

  it('returns me: null without a token', async () => {
    const res = await stack.gql<{ me: null }>('{ me { id handle } }');
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ me: null });
  });
});

describe('History', () => {
  it('pages newest first with stable opaque cursors, joined merchants and counterparties', async () => {
    const all: Txn[] = [];
    let after: string | null = null;
    let total = -1;
    for (let page = 0; page < 20; page++) {
      const res: Awaited<ReturnType<typeof stack.gql<History>>> = await stack.gql<History>(
        op('History'),
        { accountId: 'acc_alice_checking', first: 25, after },
        alice,
      );
      expect(res.errors).toBeUndefined();
      const conn = res.data!.account!.transactions;
      total = conn.totalCount;
      all.push(...conn.edges.map((e) => e.node));
      for (const e of conn.edges) expect(e.cursor).not.toContain(e.node.postedAt);
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    const seeded = buildFixture().entries.filter((e) => e.postings.some((p) => p.accountId === 'acc_alice_checking')).length;
    expect(total).toBe(seeded);
    expect(all).toHaveLength(seeded);
    expect(new Set(all.map((t) => t.id)).size).toBe(seeded);
    for (let i = 1; i < all.length; i++) expect(all[i - 1]!.postedAt >= all[i]!.postedAt).toBe(true);
    const purchase = all.find((t) => t.kind === 'PURCHASE')!;
    expect(purchase.direction).toBe('DEBIT');
    expect(purchase.merchant).toMatchObject({ id: expect.stringMatching(/^mer_/), name: expect.any(String), country: expect.stringMatching(/^[A-Z]{2}$/) });
    const p2p = all.find((t) => t.kind === 'TRANSFER' && t.counterparty)!;
    expect(p2p.counterparty!.handle).toMatch(/^(bob|carol|dave)$/);
    expect(all.some((t) => t.kind === 'DEPOSIT' && t.direction === 'CREDIT')).toBe(true);
    for (const t of all) expect(t.amount.amount).toMatch(/^[0-9]+\.[0-9]{2}$/);
  });

  it('returns the same page for the same cursor', async () => {
    const first = await stack.gql<History>(op('History'), { accountId: 'acc_alice_card', first: 5 }, alice);
    const cursor = first.data!.account!.transactions.edges[2]!.cursor;
    const a = await stack.gql<History>(op('History'), { accountId: 'acc_alice_card', first: 2, after: cursor }, alice);
    const b = await stack.gql<History>(op('History'), { accountId: 'acc_alice_card', first: 2, after: cursor }, alice);
    expect(a.data).toEqual(b.data);
    expect(a.data!.account!.transactions.edges.map((e) => e.node.id)).toEqual(first.data!.account!.transactions.edges.slice(3, 5).map((e) => e.node.id));
  });

  it.each([0, -1, 101])('rejects first = %i with BAD_USER_INPUT', async (first) => {
    const res = await stack.gql<History>(op('History'), { accountId: 'acc_alice_checking', first }, alice);
    expectGraphQLError(res, 'BAD_USER_INPUT');
    expect(JSON.stringify(res.errors)).not.toMatch(/stacktrace|at .*\.ts:/);
  });

  it('rejects a malformed cursor with BAD_USER_INPUT', async () => {
    for (const after of ['not a cursor', 'WyJ4Il0', Buffer.from('[1,2]').toString('base64url')]) {
      const res = await stack.gql<History>(op('History'), { accountId: 'acc_alice_checking', first: 5, after }, alice);
      expectGraphQLError(res, 'BAD_USER_INPUT');
      expect(res.data?.account?.transactions ?? null).toBeNull();
    }
  });

  it("returns NOT_FOUND and no data for another user's account or an unknown id", async () => {
    const bobsMask = buildFixture().accounts.find((a) => a.id === 'acc_bob_checking')!.mask;
    for (const accountId of ['acc_bob_checking', 'acc_nobody']) {
      const res = await stack.gql<History>(op('History'), { accountId, first: 5 }, alice);
      expectGraphQLError(res, 'NOT_FOUND', { status: 200 });
      expect(res.data?.account ?? null).toBeNull();
      expectNoLeak(res, [bobsMask]);
    }
  });

  it('rejects wrong variable types with BAD_USER_INPUT, never a 500', async () => {
    const res = await stack.gql(op('History'), { accountId: 'acc_alice_checking', first: 'ten' }, alice);
    expectGraphQLError(res, 'BAD_USER_INPUT', { status: 400 });
  });
});

describe('Merchants and Offers', () => {
  it('serves the merchant directory without a token', async () => {
    const res = await stack.gql<{ merchants: { id: string; name: string; category: string; country: string }[] }>(op('Merchants'), { first: 100 });
    expect(res.errors).toBeUndefined();
    expect(res.data!.merchants.length).toBe(buildFixture().merchants.length);
    expect(new Set(res.data!.merchants.map((m) => m.category)).size).toBeGreaterThanOrEqual(5);
    expect(res.data!.merchants.some((m) => m.country !== 'US')).toBe(true);
    const few = await stack.gql<{ merchants: unknown[] }>(op('Merchants'), { first: 3 });
    expect(few.data!.merchants).toHaveLength(3);
  });

  it('serves sponsored offers from the ads subgraph, joined with merchants', async () => {
    const res = await stack.gql<{ me: { handle: string; sponsoredOffers: { id: string; headline: string; merchant: { name: string; category: string } }[] } }>(
      op('Offers'),
      {},
      alice,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.me.handle).toBe('alice');
    expect(res.data!.me.sponsoredOffers.length).toBeGreaterThan(0);
    for (const o of res.data!.me.sponsoredOffers) expect(o.merchant.name.length).toBeGreaterThan(0);
  });
});

describe('authentication', () => {
  it.each([
    ['garbage', 'Bearer not.a.jwt'],
    ['wrong scheme', 'Basic YWxpY2U6cGFzcw=='],
  ])('rejects a %s token with UNAUTHENTICATED (401)', async (_, authorization) => {
    const res = await stack.gql('{ me { id } }', {}, null, { authorization });
    expectGraphQLError(res, 'UNAUTHENTICATED', { status: 401, noData: true });
  });

  it('rejects expired and forged tokens with UNAUTHENTICATED (401)', async () => {
    const expired = await signToken(TEST_JWT_SECRET, 'usr_alice', 'payments', Math.floor(Date.now() / 1000) - 60);
    const forged = await signToken(randomSecret('some-other-secret'), 'usr_alice', 'payments');
    for (const token of [expired, forged]) {
      expectGraphQLError(await stack.gql('{ me { id } }', {}, token), 'UNAUTHENTICATED', { status: 401, noData: true });
    }
  });

  it('hides query plans from clients', async () => {
    const res = await stack.gql<{ merchants: unknown[] }>('{ merchants(first: 1) { id } }', {}, null, { 'apollo-query-plan-experimental': '1' });
    expectData(res);
    expect(res.text).not.toMatch(/queryPlan/i);
  });
});
