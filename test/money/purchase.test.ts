/**
 * makePurchase through the gateway, and the payments service's internal routes (`events`,
 * `freeze`) as the alerts service calls them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callInternal } from '../../lib/transport/internal-client.js';
import { toBigInt } from '../../lib/money.js';
import { expectNothingMoved, expectUserErrors } from '../helpers/matchers.js';
import { balanceOf, history, newKey, pay } from '../helpers/money.js';
import { signerOf } from '../helpers/signing.js';
import { regrantRevokedSeedConsent } from '../helpers/consent.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let alice: string;
let dave: string;

interface FeedEvent {
  id: number;
  type: string;
  createdAt: string;
  payload: Record<string, unknown>;
}

/** A payments internal route, called as the alerts service (the only one they accept). */
const internal = <T>(route: string, body: unknown) =>
  callInternal<T>(signerOf('alerts'), 'payments', stack.subgraphs.payments.url.replace(/\/graphql$/, ''), route, body);

beforeAll(async () => {
  stack = await startTestStack();
  [alice, dave] = await Promise.all([stack.token('alice'), stack.token('dave')]);
  // Every seeded account may move money here (consent itself: test/consent/).
  await regrantRevokedSeedConsent(stack.gql, (h) => stack.token(h));
});
afterAll(async () => {
  await stack?.stop();
});

const base = (over: Record<string, unknown> = {}) => ({
  accountId: 'acc_alice_card',
  merchantId: 'mer_blue_bottle',
  amount: { amount: '4.75', currency: 'USD' },
  idempotencyKey: newKey(),
  ...over,
});

describe('a successful purchase', () => {
  it('charges the card, credits the merchant and shows in history with the merchant', async () => {
    const db = stack.dbs.payments;
    const [card0, settle0] = [await balanceOf(db, 'acc_alice_card'), await balanceOf(db, 'settle_mer_tesco')];
    const out = await pay(stack, alice, base({ merchantId: 'mer_tesco', amount: { amount: '23.40', currency: 'USD' }, cardPresent: false }));
    expect(out.userErrors).toEqual([]);
    expect(out.purchase).toMatchObject({
      status: 'POSTED',
      amount: { amount: '23.40', currency: 'USD' },
      merchant: { id: 'mer_tesco', name: 'Tesco', country: 'GB' },
      account: { id: 'acc_alice_card' },
    });
    expect(out.purchase!.id).toMatch(/^pur_/);
    expect(await balanceOf(db, 'acc_alice_card')).toBe(card0 - 2340n);
    expect(await balanceOf(db, 'settle_mer_tesco')).toBe(settle0 + 2340n);
    const [line] = await history(stack, alice, 'acc_alice_card', 1);
    expect(line).toMatchObject({
      kind: 'PURCHASE',
      direction: 'DEBIT',
      amount: { amount: '23.40', currency: 'USD' },
      description: 'Tesco',
      merchant: { id: 'mer_tesco', name: 'Tesco', category: 'GROCERIES', country: 'GB' },
      counterparty: null,
    });

    const q = 'query($id: ID!) { purchase(id: $id) { id merchant { name } account { id } } }';
    expect((await stack.gql<{ purchase: { id: string } | null }>(q, { id: out.purchase!.id }, alice)).data?.purchase?.id).toBe(out.purchase!.id);
    expect((await stack.gql<{ purchase: unknown }>(q, { id: out.purchase!.id }, dave)).data?.purchase).toBeNull();
  });

  it('from a checking account, with a description kept as data', async () => {
    const description = `<img src=x onerror=alert(1)>'; DELETE FROM ledger_accounts; --`;
    const out = await pay(stack, alice, base({ accountId: 'acc_alice_checking', description }));
    expect(out.userErrors).toEqual([]);
    const [line] = await history(stack, alice, 'acc_alice_checking', 1);
    expect(line).toMatchObject({ kind: 'PURCHASE', description, merchant: { id: 'mer_blue_bottle' } });
    expect(Number(((await stack.dbs.payments('ledger_accounts').count({ n: '*' }).first()) as { n: unknown }).n)).toBeGreaterThan(30);
  });

  it('is idempotent', async () => {
    const db = stack.dbs.payments;
    const input = base({ amount: { amount: '9.99', currency: 'USD' } });
    const card0 = await balanceOf(db, 'acc_alice_card');
    const first = await pay(stack, alice, input);
    expect(await pay(stack, alice, input)).toEqual(first);
    expect(await balanceOf(db, 'acc_alice_card')).toBe(card0 - 999n);
    expectUserErrors(await pay(stack, alice, { ...input, cardPresent: false }), ['IDEMPOTENCY_KEY_REUSED']);
    expect(await balanceOf(db, 'acc_alice_card')).toBe(card0 - 999n);
  });
});

describe('refusals move nothing', () => {
  const cases: { name: string; code: string; token?: () => string; input: () => Record<string, unknown> }[] = [
    { name: 'zero', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '0', currency: 'USD' } }) },
    { name: 'a float-looking exponent', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '4.75e0', currency: 'USD' } }) },
    { name: 'spaces', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: ' 4.75', currency: 'USD' } }) },
    { name: 'unknown currency', code: 'UNSUPPORTED_CURRENCY', input: () => base({ amount: { amount: '4.75', currency: 'usd' } }) },
    { name: 'GBP on a USD card', code: 'CURRENCY_MISMATCH', input: () => base({ amount: { amount: '4.75', currency: 'GBP' } }) },
    {
      name: 'over the credit limit',
      code: 'INSUFFICIENT_FUNDS',
      input: () => base({ accountId: 'acc_dave_card', amount: { amount: '117.72', currency: 'USD' } }),
      token: () => dave,
    },
    {
      name: 'more than the checking balance',
      code: 'INSUFFICIENT_FUNDS',
      input: () => base({ accountId: 'acc_dave_checking', amount: { amount: '9050.44', currency: 'USD' }, merchantId: 'mer_apple' }),
      token: () => dave,
    },
    { name: "someone else's card", code: 'ACCOUNT_NOT_FOUND', input: () => base({ accountId: 'acc_bob_card' }) },
    { name: 'a merchant settlement account', code: 'ACCOUNT_NOT_FOUND', input: () => base({ accountId: 'settle_mer_tesco' }) },
    { name: 'an unknown merchant', code: 'MERCHANT_NOT_FOUND', input: () => base({ merchantId: 'mer_nope' }) },
    { name: 'a user id as merchant', code: 'MERCHANT_NOT_FOUND', input: () => base({ merchantId: 'usr_bob' }) },
    { name: 'a long description', code: 'INVALID_INPUT', input: () => base({ description: 'd'.repeat(281) }) },
    { name: 'a long key', code: 'INVALID_INPUT', input: () => base({ idempotencyKey: 'k'.repeat(256) }) },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.code}`, async () => {
      expectUserErrors(await expectNothingMoved(stack.dbs.payments, () => pay(stack, c.token ? c.token() : alice, c.input())), [c.code]);
    });
  }

  it('exactly the unused credit is fine', async () => {
    const out = await pay(stack, dave, base({ accountId: 'acc_dave_card', amount: { amount: '117.71', currency: 'USD' } }));
    expect(out.userErrors).toEqual([]);
    const card = (await stack.dbs.payments('ledger_accounts').where({ id: 'acc_dave_card' }).first()) as {
      balance_minor: unknown;
      credit_limit_minor: unknown;
    };
    expect(toBigInt(card.balance_minor)).toBe(-toBigInt(card.credit_limit_minor));
  });
});

describe('internal routes', () => {
  it('events: purchase and transfer events with the agreed payloads, in id order, after a position', async () => {
    const start = (await internal<{ events: FeedEvent[] }>('events', { after: 0, limit: 500 })).events;
    const last = start.length ? start[start.length - 1]!.id : 0;
    const p = await pay(stack, alice, base({ merchantId: 'mer_air_france', amount: { amount: '321.00', currency: 'USD' }, cardPresent: false }));
    const t = await stack.gql<{ sendTransfer: { transfer: { id: string } } }>(
      'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { transfer { id } } }',
      { input: { fromAccountId: 'acc_alice_checking', toHandle: 'carol', amount: { amount: '5.00', currency: 'USD' }, idempotencyKey: newKey() } },
      alice,
    );
    const { events } = await internal<{ events: FeedEvent[] }>('events', { after: last, limit: 10 });
    expect(events.map((e) => e.type)).toEqual(['PURCHASE_POSTED', 'TRANSFER_POSTED']);
    expect(events[0]!.id).toBeGreaterThan(last);
    expect(events[1]!.id).toBeGreaterThan(events[0]!.id);
    expect(events[0]).toEqual({
      id: events[0]!.id,
      type: 'PURCHASE_POSTED',
      createdAt: p.purchase!.createdAt,
      payload: {
        purchaseId: p.purchase!.id,
        accountId: 'acc_alice_card',
        accountKind: 'CREDIT_CARD',
        userId: 'usr_alice',
        userCountry: 'US',
        merchantId: 'mer_air_france',
        merchantCategory: 'TRAVEL',
        merchantCountry: 'FR',
        mcc: '3007',
        amountMinor: '32100',
        currency: 'USD',
        postedAt: p.purchase!.createdAt,
        cardPresent: false,
      },
    });
    expect(events[1]!.payload).toEqual({
      transferId: t.data!.sendTransfer.transfer.id,
      fromAccountId: 'acc_alice_checking',
      fromUserId: 'usr_alice',
      toUserId: 'usr_carol',
      amountMinor: '500',
      currency: 'USD',
      postedAt: events[1]!.createdAt,
    });
    // Paging: limit and after.
    const one = await internal<{ events: FeedEvent[] }>('events', { after: last, limit: 1 });
    expect(one.events.map((e) => e.id)).toEqual([events[0]!.id]);
    expect((await internal<{ events: FeedEvent[] }>('events', { after: events[1]!.id, limit: 500 })).events).toEqual([]);
  });

  it('events: refusals write no event', async () => {
    const all = (await internal<{ events: FeedEvent[] }>('events', { after: 0, limit: 500 })).events;
    const last = all[all.length - 1]?.id ?? 0;
    await pay(stack, alice, base({ merchantId: 'mer_nope' }));
    expect((await internal<{ events: FeedEvent[] }>('events', { after: last, limit: 500 })).events).toEqual([]);
  });

  it('events: bad paging is a 400, unsigned calls a 401', async () => {
    for (const body of [
      { after: -1, limit: 10 },
      { after: 0, limit: 0 },
      { after: 0, limit: 501 },
      { after: 'x', limit: 10 },
      { after: 0.5, limit: 10 },
    ]) {
      await expect(internal('events', body)).rejects.toMatchObject({ status: 400 });
    }
    const res = await fetch(`${stack.subgraphs.payments.url.replace(/\/graphql$/, '')}/internal/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"after":0,"limit":10}',
    });
    expect(res.status).toBe(401);
    await expect(internal('events', { after: 0, limit: 1 })).resolves.toBeDefined();
  });

  it('freeze: freezes (idempotently), refuses unknown accounts, and frozen cards refuse purchases', async () => {
    const db = stack.dbs.payments;
    expect(await internal('freeze', { accountId: 'acc_alice_card', alertId: 'alt_1' })).toEqual({ frozen: true });
    expect(await internal('freeze', { accountId: 'acc_alice_card', alertId: 'alt_1' })).toEqual({ frozen: true });
    expect(await internal('freeze', { accountId: 'acc_nope', alertId: 'alt_2' })).toEqual({ frozen: false, error: 'ACCOUNT_NOT_FOUND' });
    expect(await internal('freeze', { accountId: 'settle_mer_tesco', alertId: 'alt_3' })).toEqual({ frozen: false, error: 'ACCOUNT_NOT_FOUND' });
    await expect(internal('freeze', { accountId: 42 })).rejects.toMatchObject({ status: 400 });
    expect(Number(((await db('account_freezes').where({ account_id: 'acc_alice_card' }).count({ n: '*' }).first()) as { n: unknown }).n)).toBe(1);

    expectUserErrors(await expectNothingMoved(db, () => pay(stack, alice, base())), ['ACCOUNT_FROZEN'], { field: ['input', 'accountId'] });
    // The checking account is not frozen.
    expect((await pay(stack, alice, base({ accountId: 'acc_alice_checking' }))).userErrors).toEqual([]);
  });
});
