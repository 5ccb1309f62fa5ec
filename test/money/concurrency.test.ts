/**
 * Concurrency through the gateway: many simultaneous requests, no overdraft, no lost update, the
 * total conserved, and a key duplicated at the same moment moves money once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBigInt } from '../../lib/money.js';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import {
  afterPlan,
  balanceOf,
  balances,
  expectConcurrentDrainNeverOverdraws,
  HANDLES,
  newKey,
  pay,
  send,
  transferInput,
  transferPlan,
  usersTotal as total,
} from '../helpers/money.js';
import { regrantRevokedSeedConsent } from '../helpers/consent.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  stack = await startTestStack();
  for (const h of HANDLES) tokens[h] = await stack.token(h);
  // Every seeded account may move money here (consent itself: test/consent/).
  await regrantRevokedSeedConsent(stack.gql, (h) => stack.token(h));
});
afterAll(async () => {
  await stack?.stop();
});

describe('concurrent money movement', () => {
  it('many parallel transfers between seeded users conserve the total and lose no update', async () => {
    const db = stack.dbs.payments;
    const before = await balances(db);
    // Deterministic pseudo-random plan: 80 transfers between the four users, 0.01 .. 60.00 each.
    const plan = transferPlan(80, 12345);
    const results = await Promise.all(plan.map((p) => send(stack, tokens[p.from]!, transferInput(p))));
    const after = await balances(db);
    expect(results.every((r) => r.userErrors.length === 0)).toBe(true);
    expect(total(after)).toBe(total(before));
    // Every account moved by exactly what its committed transfers say: no lost update.
    expect(after).toEqual(afterPlan(before, plan, (i) => results[i]!.transfer !== null));
    expect(new Set(results.map((r) => r.transfer!.id)).size).toBe(plan.length);
    expect((await verifyLedger(db)).problems).toEqual([]);
  });

  it('a burst of transfers against one checking account never overdraws it', async () => {
    const db = stack.dbs.payments;
    await expectConcurrentDrainNeverOverdraws(db, tokens.carol!, () => stack);
  });

  it('a burst of purchases against one card never exceeds its credit limit', async () => {
    const db = stack.dbs.payments;
    // Dave's card: 2,500.00 limit, 2,382.29 owed: 117.71 available.
    const row = (await db('ledger_accounts').where({ id: 'acc_dave_card' }).first()) as { balance_minor: unknown; credit_limit_minor: unknown };
    const card = { balance_minor: toBigInt(row.balance_minor), credit_limit_minor: toBigInt(row.credit_limit_minor) };
    const available = card.credit_limit_minor + card.balance_minor;
    const settle0 = await balanceOf(db, 'settle_mer_uber');
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        pay(stack, tokens.dave!, { accountId: 'acc_dave_card', merchantId: 'mer_uber', amount: { amount: '5.00', currency: 'USD' }, idempotencyKey: newKey() }),
      ),
    );
    const ok = results.filter((r) => r.purchase).length;
    expect(BigInt(ok)).toBe(available / 500n);
    expect(results.filter((r) => !r.purchase).every((r) => r.userErrors[0]!.code === 'INSUFFICIENT_FUNDS')).toBe(true);
    const after = await balanceOf(db, 'acc_dave_card');
    expect(after).toBeGreaterThanOrEqual(-card.credit_limit_minor);
    expect(after).toBe(card.balance_minor - BigInt(ok) * 500n);
    expect(await balanceOf(db, 'settle_mer_uber')).toBe(settle0 + BigInt(ok) * 500n);
  });

  it('the same idempotency key sent many times at the same moment moves money once', async () => {
    const db = stack.dbs.payments;
    const a0 = await balanceOf(db, 'acc_alice_checking');
    const b0 = await balanceOf(db, 'acc_bob_checking');
    const input = {
      fromAccountId: 'acc_alice_checking',
      toHandle: 'bob',
      amount: { amount: '11.11', currency: 'USD' },
      note: 'once only',
      idempotencyKey: newKey(),
    };
    const results = await Promise.all(Array.from({ length: 12 }, () => send(stack, tokens.alice!, input)));
    expect(results.every((r) => r.userErrors.length === 0)).toBe(true);
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(await balanceOf(db, 'acc_alice_checking')).toBe(a0 - 1111n);
    expect(await balanceOf(db, 'acc_bob_checking')).toBe(b0 + 1111n);
    expect(Number(((await db('transfers').where({ note: 'once only' }).count({ n: '*' }).first()) as { n: unknown }).n)).toBe(1);

    const p = { accountId: 'acc_alice_card', merchantId: 'mer_netflix', amount: { amount: '15.49', currency: 'USD' }, idempotencyKey: newKey() };
    const card0 = await balanceOf(db, 'acc_alice_card');
    const purchases = await Promise.all(Array.from({ length: 12 }, () => pay(stack, tokens.alice!, p)));
    expect(new Set(purchases.map((r) => r.purchase?.id)).size).toBe(1);
    expect(purchases[0]!.purchase).not.toBeNull();
    expect(await balanceOf(db, 'acc_alice_card')).toBe(card0 - 1549n);
  });

  it('the same key with different inputs at the same moment: one wins, the others are IDEMPOTENCY_KEY_REUSED', async () => {
    const db = stack.dbs.payments;
    const key = newKey();
    const a0 = await balanceOf(db, 'acc_alice_checking');
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        send(stack, tokens.alice!, {
          fromAccountId: 'acc_alice_checking',
          toHandle: 'dave',
          amount: { amount: `${n}.00`, currency: 'USD' },
          idempotencyKey: key,
        }),
      ),
    );
    const winners = results.filter((r) => r.transfer);
    expect(winners.length).toBe(1);
    expect(results.filter((r) => !r.transfer).every((r) => r.userErrors[0]!.code === 'IDEMPOTENCY_KEY_REUSED')).toBe(true);
    const moved = BigInt(winners[0]!.transfer!.amount.amount.replace('.', ''));
    expect(await balanceOf(db, 'acc_alice_checking')).toBe(a0 - moved);
    expect((await verifyLedger(db)).ok).toBe(true);
  });
});
