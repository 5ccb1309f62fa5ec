/** The fraud rules as pure functions, and the consumer's idempotent, ordered event application. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { migrate, openDb } from '../../lib/db.js';
import { AlertBus } from '../../subgraphs/alerts/bus.js';
import { accountHistory, cursorBefore, readPosition } from '../../subgraphs/alerts/data.js';
import { migrations } from '../../subgraphs/alerts/migrations.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { applyEvent, applyEvents, type FeedEvent } from '../../subgraphs/alerts/apply.js';
import { LogCapture } from '../helpers/logs.js';
import {
  ALERT_THRESHOLD,
  AMOUNT_ANOMALY_MIN_MINOR,
  AMOUNT_ANOMALY_RATIO,
  amountAnomaly,
  EMPTY_HISTORY,
  evaluate,
  foreignMerchant,
  LARGE_AMOUNT_WITHOUT_HISTORY_MINOR,
  median,
  MIN_HISTORY,
  newCategory,
  riskScore,
  unusualHour,
  velocity,
  VELOCITY_MAX_CHARGES,
  VELOCITY_WINDOW_MS,
  WEIGHTS,
  type AccountHistory,
  type PurchaseFacts,
} from '../../subgraphs/alerts/rules.js';

const DAYTIME = '2026-11-20T14:03:07.120Z';
const NIGHT = '2026-11-20T02:30:00.000Z';

function purchase(over: Partial<PurchaseFacts> = {}): PurchaseFacts {
  return {
    accountId: 'acc_1',
    amountMinor: 1_250n,
    currency: 'USD',
    merchantCategory: 'RESTAURANTS',
    merchantCountry: 'US',
    userCountry: 'US',
    postedAt: DAYTIME,
    cardPresent: true,
    ...over,
  };
}

function history(amounts: bigint[], over: Partial<AccountHistory> = {}): AccountHistory {
  return {
    purchaseCount: amounts.length,
    recentAmountsMinor: amounts,
    recentPostedAt: amounts.map((_, i) => new Date(Date.parse(DAYTIME) - (i + 1) * 24 * 3600_000).toISOString()),
    categories: new Set(['RESTAURANTS', 'GROCERIES']),
    ...over,
  };
}

const usual = history([1_000n, 1_200n, 900n, 1_500n, 1_100n, 1_300n]);

describe('rules', () => {
  it('median', () => {
    expect(median([])).toBeNull();
    expect(median([3n, 1n, 2n])).toBe(2n);
    expect(median([4n, 1n, 2n, 3n])).toBe(2n);
  });

  it('a normal purchase raises nothing', () => {
    expect(evaluate(purchase(), usual)).toEqual({ riskScore: 0, reasons: [], alert: false });
    expect(evaluate(purchase(), EMPTY_HISTORY)).toEqual({ riskScore: 0, reasons: [], alert: false });
  });

  it('AMOUNT_ANOMALY: far above the median of recent purchases, with a minimum amount', () => {
    const med = median(usual.recentAmountsMinor)!;
    expect(amountAnomaly(purchase({ amountMinor: med * BigInt(AMOUNT_ANOMALY_RATIO) + 1n }), usual)).toBe(true);
    expect(amountAnomaly(purchase({ amountMinor: med * BigInt(AMOUNT_ANOMALY_RATIO) }), usual)).toBe(false);
    // Tiny usual amounts: 5x of $1 is not an anomaly below the minimum amount.
    const tiny = history([100n, 100n, 100n, 100n, 100n]);
    expect(amountAnomaly(purchase({ amountMinor: AMOUNT_ANOMALY_MIN_MINOR - 1n }), tiny)).toBe(false);
    expect(amountAnomaly(purchase({ amountMinor: AMOUNT_ANOMALY_MIN_MINOR }), tiny)).toBe(true);
  });

  it('AMOUNT_ANOMALY without enough history: only an absolute large amount', () => {
    const short = history([100n, 100n]);
    expect(short.recentAmountsMinor.length).toBeLessThan(MIN_HISTORY);
    expect(amountAnomaly(purchase({ amountMinor: 50_000n }), short)).toBe(false);
    expect(amountAnomaly(purchase({ amountMinor: LARGE_AMOUNT_WITHOUT_HISTORY_MINOR }), short)).toBe(true);
    expect(amountAnomaly(purchase({ amountMinor: LARGE_AMOUNT_WITHOUT_HISTORY_MINOR }), EMPTY_HISTORY)).toBe(true);
  });

  it('VELOCITY: many charges on the account within the window', () => {
    const at = Date.parse(DAYTIME);
    const recent = (n: number, spacingMs: number) => Array.from({ length: n }, (_, i) => new Date(at - (i + 1) * spacingMs).toISOString());
    expect(velocity(purchase(), { ...usual, recentPostedAt: recent(VELOCITY_MAX_CHARGES - 1, 60_000) })).toBe(true);
    expect(velocity(purchase(), { ...usual, recentPostedAt: recent(VELOCITY_MAX_CHARGES - 2, 60_000) })).toBe(false);
    // Spread out beyond the window: not velocity.
    expect(velocity(purchase(), { ...usual, recentPostedAt: recent(VELOCITY_MAX_CHARGES - 1, VELOCITY_WINDOW_MS) })).toBe(false);
  });

  it('NEW_CATEGORY: only with enough history', () => {
    expect(newCategory(purchase({ merchantCategory: 'ELECTRONICS' }), usual)).toBe(true);
    expect(newCategory(purchase({ merchantCategory: 'RESTAURANTS' }), usual)).toBe(false);
    expect(newCategory(purchase({ merchantCategory: 'ELECTRONICS' }), history([1n, 2n]))).toBe(false);
  });

  it("FOREIGN_MERCHANT: merchant country differs from the user's", () => {
    expect(foreignMerchant(purchase({ merchantCountry: 'FR' }))).toBe(true);
    expect(foreignMerchant(purchase({ merchantCountry: 'us' }))).toBe(false);
    expect(foreignMerchant(purchase({ merchantCountry: 'FR', userCountry: null }))).toBe(false);
  });

  it('UNUSUAL_HOUR: card not present, at night (UTC)', () => {
    expect(unusualHour(purchase({ cardPresent: false, postedAt: NIGHT }))).toBe(true);
    expect(unusualHour(purchase({ cardPresent: true, postedAt: NIGHT }))).toBe(false);
    expect(unusualHour(purchase({ cardPresent: false, postedAt: DAYTIME }))).toBe(false);
    expect(unusualHour(purchase({ cardPresent: false, postedAt: '2026-11-20T05:00:00.000Z' }))).toBe(false);
    expect(unusualHour(purchase({ cardPresent: false, postedAt: '2026-11-20T00:00:00.000Z' }))).toBe(true);
  });

  it('no single reason raises an alert; two strong ones do; the score is capped at 100', () => {
    for (const w of Object.values(WEIGHTS)) expect(w).toBeLessThan(ALERT_THRESHOLD);
    expect(evaluate(purchase({ merchantCountry: 'FR' }), usual)).toEqual({ riskScore: WEIGHTS.FOREIGN_MERCHANT, reasons: ['FOREIGN_MERCHANT'], alert: false });
    const v = evaluate(purchase({ merchantCountry: 'FR', amountMinor: 120_000n, cardPresent: false, postedAt: NIGHT }), EMPTY_HISTORY);
    expect(v.reasons).toEqual(['AMOUNT_ANOMALY', 'FOREIGN_MERCHANT', 'UNUSUAL_HOUR']);
    expect(v.riskScore).toBe(WEIGHTS.AMOUNT_ANOMALY + WEIGHTS.FOREIGN_MERCHANT + WEIGHTS.UNUSUAL_HOUR);
    expect(v.alert).toBe(true);
    expect(riskScore(['AMOUNT_ANOMALY', 'VELOCITY', 'NEW_CATEGORY', 'FOREIGN_MERCHANT', 'UNUSUAL_HOUR'])).toBe(100);
  });
});

describe('consumer: applyEvent', () => {
  const quiet = { log: silentLogger };
  let db: Knex;
  beforeEach(async () => {
    db = openDb({ sqliteFile: ':memory:' });
    await migrate(db, migrations);
  });
  afterEach(async () => {
    await db.destroy();
  });

  let nextPurchase = 0;
  function event(id: number, over: Record<string, unknown> = {}): FeedEvent {
    nextPurchase += 1;
    return {
      id,
      type: 'PURCHASE_POSTED',
      createdAt: DAYTIME,
      payload: {
        purchaseId: `pur_${nextPurchase}`,
        accountId: 'acc_alice_card',
        accountKind: 'CREDIT_CARD',
        userId: 'usr_alice',
        userCountry: 'US',
        merchantId: 'mer_blue_bottle',
        merchantCategory: 'RESTAURANTS',
        merchantCountry: 'US',
        mcc: '5814',
        amountMinor: '650',
        currency: 'USD',
        postedAt: new Date(Date.parse(DAYTIME) + id * 3600_000).toISOString(),
        cardPresent: true,
        ...over,
      },
    };
  }

  it('is idempotent by event id and advances the position in the same transaction', async () => {
    const e = event(1, { merchantId: 'mer_air_france', merchantCountry: 'FR', amountMinor: '120000', cardPresent: false });
    const first = await applyEvent(db, e, quiet);
    expect(first).not.toBeNull();
    expect(first!.reasons).toEqual(expect.arrayContaining(['AMOUNT_ANOMALY', 'FOREIGN_MERCHANT']));
    expect(first!.eventId).toBe(1);
    expect(await applyEvent(db, e, quiet)).toBeNull();
    expect(await db('charge_alerts').count({ n: '*' }).first()).toEqual({ n: 1 });
    expect(await db('purchase_history').count({ n: '*' }).first()).toEqual({ n: 1 });
    expect(await readPosition(db)).toBe(1);
    // An older event (already behind the position) is skipped too.
    expect(await applyEvent(db, event(1), quiet)).toBeNull();
  });

  it('applies a page of events in one transaction with the same effect as one by one, and a replayed page changes nothing', async () => {
    const transfer = (id: number): FeedEvent => ({ id, type: 'TRANSFER_POSTED', createdAt: DAYTIME, payload: {} });
    const foreign = { merchantId: 'mer_air_france', merchantCountry: 'FR', amountMinor: '120000', cardPresent: false };
    const page = [event(1), transfer(2), event(3, foreign), transfer(4), event(5, foreign)];
    const other = openDb({ sqliteFile: ':memory:' });
    try {
      await migrate(other, migrations);
      const oneByOne = [];
      for (const e of page) oneByOne.push(await applyEvent(other, e, quiet));
      const together = await applyEvents(db, page, quiet);
      expect(together.map((a) => [a.eventId, a.riskScore, a.reasons])).toEqual(
        oneByOne.filter((a) => a !== null).map((a) => [a!.eventId, a!.riskScore, a!.reasons]),
      );
      expect(together.map((a) => a.eventId)).toEqual([3, 5]);
      expect(await readPosition(db)).toBe(5);
      // Replaying the page (a retry after a lost answer) raises nothing and records nothing twice.
      expect(await applyEvents(db, page, quiet)).toEqual([]);
      expect(await db('charge_alerts').count({ n: '*' }).first()).toEqual({ n: 2 });
      expect(await db('purchase_history').count({ n: '*' }).first()).toEqual({ n: 3 });
    } finally {
      await other.destroy();
    }
  });

  it('rolls back a whole page when one event fails, so the page is read again from the stored position', async () => {
    const page = [event(1), event(2, { merchantId: 'mer_air_france', merchantCountry: 'FR', amountMinor: '120000', cardPresent: false })];
    // A database fault in the middle of the page: the second purchase's history insert fails.
    await db.raw("CREATE TRIGGER fail_second BEFORE INSERT ON purchase_history WHEN NEW.event_id = 2 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    await expect(applyEvents(db, page, quiet)).rejects.toThrow(/disk on fire/);
    expect(await readPosition(db)).toBe(0);
    expect(await db('purchase_history').count({ n: '*' }).first()).toEqual({ n: 0 });
    await db.raw('DROP TRIGGER fail_second');
    expect((await applyEvents(db, page, quiet)).map((a) => a.eventId)).toEqual([2]);
    expect(await readPosition(db)).toBe(2);
  });

  it('ignores non-purchase events but moves past them; skips malformed ones loudly', async () => {
    expect(await applyEvent(db, { id: 1, type: 'TRANSFER_POSTED', createdAt: DAYTIME, payload: {} }, quiet)).toBeNull();
    expect(await readPosition(db)).toBe(1);
    const logs = new LogCapture();
    const log = createLogger('alerts', { destination: logs, level: 'warn' });
    expect(await applyEvent(db, { id: 2, type: 'PURCHASE_POSTED', createdAt: DAYTIME, payload: { purchaseId: 'x' } }, { log })).toBeNull();
    expect(logs.records()).toEqual([expect.objectContaining({ level: 50, eventId: 2, msg: 'skipping a malformed PURCHASE_POSTED event' })]);
    expect(await readPosition(db)).toBe(2);
  });

  it('learns usual spending from events: a purchase far above it raises AMOUNT_ANOMALY', async () => {
    for (let i = 1; i <= MIN_HISTORY; i++) expect(await applyEvent(db, event(i), quiet)).toBeNull();
    const h = await accountHistory(db, 'acc_alice_card', 'USD', 100);
    expect(h.purchaseCount).toBe(MIN_HISTORY);
    expect(h.categories).toEqual(new Set(['RESTAURANTS']));
    // 650 usual; 60.00 at a new category, in the daytime, card present, domestic:
    // AMOUNT_ANOMALY (40) + NEW_CATEGORY (15) = 55.
    const alert = await applyEvent(db, event(MIN_HISTORY + 1, { amountMinor: '6000', merchantCategory: 'ELECTRONICS', merchantId: 'mer_best_buy' }), quiet);
    expect(alert).not.toBeNull();
    expect(alert!.reasons).toEqual(['AMOUNT_ANOMALY', 'NEW_CATEGORY']);
    expect(alert!.riskScore).toBe(WEIGHTS.AMOUNT_ANOMALY + WEIGHTS.NEW_CATEGORY);
  });

  it("the history compares amounts in the purchase's currency only", async () => {
    await applyEvent(db, event(1, { currency: 'EUR', amountMinor: '100' }), quiet);
    await applyEvent(db, event(2, { amountMinor: '700' }), quiet);
    const h = await accountHistory(db, 'acc_alice_card', 'USD', 100);
    expect(h.purchaseCount).toBe(2);
    expect(h.recentAmountsMinor).toEqual([700n]);
    expect(h.recentPostedAt).toHaveLength(2);
  });

  it('cursorBefore: every alert of the user raised at or after `since` is after the cursor', async () => {
    expect(await cursorBefore(db, 'usr_alice', new Date().toISOString())).toBe(0);
    const a1 = await applyEvent(db, event(1, { merchantCountry: 'FR', amountMinor: '120000' }), quiet);
    const since = new Date(Date.parse(a1!.createdAt) + 1).toISOString();
    expect(await cursorBefore(db, 'usr_alice', since)).toBe(1);
    expect(await cursorBefore(db, 'usr_alice', a1!.createdAt)).toBe(0);
    expect(await cursorBefore(db, 'usr_bob', since)).toBe(0);
  });

  it('the bus replays alerts after a cursor, then goes live, only for the user, each once', async () => {
    const bus = new AlertBus(silentLogger);
    const a1 = await applyEvent(db, event(1, { merchantCountry: 'FR', amountMinor: '120000' }), quiet);
    const stream = bus.stream(db, 'usr_alice', 0);
    const other = bus.stream(db, 'usr_bob', 0);
    expect((await stream.next()).value?.id).toBe(a1!.id);
    const a2 = await applyEvent(db, event(2, { merchantCountry: 'FR', amountMinor: '130000' }), quiet);
    bus.publish(a2!);
    bus.publish(a2!); // a duplicate publication is dropped by cursor
    const a3 = await applyEvent(db, event(3, { merchantCountry: 'FR', amountMinor: '140000' }), quiet);
    bus.publish(a3!);
    expect((await stream.next()).value?.id).toBe(a2!.id);
    expect((await stream.next()).value?.id).toBe(a3!.id);
    expect(bus.listenerCount()).toBe(2);
    await stream.return();
    await other.return();
    expect(bus.listenerCount()).toBe(0);
  });
});
