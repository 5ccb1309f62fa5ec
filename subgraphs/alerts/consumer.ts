/**
 * The alerts consumer: pulls the payments event feed (POST /internal/events on the payments
 * service) from the position stored in the alerts database, and for each event, in one
 * transaction: records the purchase in the account's history, runs the rules, inserts the alert
 * (if any) and advances the position. Delivery is at least once (the position only moves in the
 * transaction that applied the event), processing is idempotent by event id (the position check
 * and the primary key of purchase_history, plus one alert per purchase), and it resumes where it
 * stopped after a restart. Payments being down only delays it: it retries with backoff.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { callInternal } from '../../lib/internal.js';
import type { ServiceEnv } from '../../lib/subgraph.js';
import type { AlertBus } from './bus.js';
import { accountHistory, insertAlert, isRecorded, readPosition, recordPurchase, writePosition, type ChargeAlertRow } from './data.js';
import { backoff, WorkerLoop } from './loop.js';
import { evaluate } from './rules.js';

/** Pause between polls of the feed when it is drained. */
export const POLL_INTERVAL_MS = 150;
/** Events per feed request. */
export const BATCH_SIZE = 100;
/** Backoff after a failed poll (payments down, network error), from min to max. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 5_000;
/** Consecutive failed polls before the outage is logged. */
export const LOG_AFTER_FAILURES = 3;
/** Feed request timeout. */
export const FEED_TIMEOUT_MS = 5_000;

export interface FeedEvent {
  id: number;
  type: string;
  createdAt: string;
  payload: unknown;
}

const PurchasePosted = z.object({
  purchaseId: z.string().min(1),
  accountId: z.string().min(1),
  userId: z.string().min(1),
  userCountry: z.string().min(2).nullable().optional().transform((v) => v ?? null),
  merchantId: z.string().min(1),
  merchantCategory: z.string().min(1),
  merchantCountry: z.string().min(2),
  amountMinor: z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]),
  currency: z.string().length(3),
  postedAt: z.string().min(10),
  cardPresent: z.boolean().optional().default(true),
});

/**
 * Applies one event in one transaction. Returns the alert it raised, or null (not a purchase,
 * nothing suspicious, or already processed).
 */
export async function applyEvent(db: Knex, event: FeedEvent): Promise<ChargeAlertRow | null> {
  return db.transaction(async (trx) => {
    const position = await readPosition(trx);
    if (event.id <= position) return null;
    let alert: ChargeAlertRow | null = null;
    if (event.type === 'PURCHASE_POSTED' && !(await isRecorded(trx, event.id))) {
      const parsed = PurchasePosted.safeParse(event.payload);
      if (!parsed.success) {
        // A malformed event is a producer bug: skip it loudly rather than block the feed forever.
        console.error(`[alerts] skipping malformed PURCHASE_POSTED event ${event.id}: ${parsed.error.message}`);
      } else {
        const p = parsed.data;
        const amountMinor = BigInt(p.amountMinor);
        const history = await accountHistory(trx, p.accountId, p.currency, event.id);
        const verdict = evaluate(
          { accountId: p.accountId, amountMinor, currency: p.currency, merchantCategory: p.merchantCategory, merchantCountry: p.merchantCountry, userCountry: p.userCountry, postedAt: p.postedAt, cardPresent: p.cardPresent },
          history,
        );
        await recordPurchase(trx, {
          eventId: event.id,
          purchaseId: p.purchaseId,
          accountId: p.accountId,
          userId: p.userId,
          amountMinor,
          currency: p.currency,
          merchantId: p.merchantId,
          merchantCategory: p.merchantCategory,
          merchantCountry: p.merchantCountry,
          postedAt: p.postedAt,
          cardPresent: p.cardPresent,
        });
        if (verdict.alert) {
          alert = await insertAlert(trx, { userId: p.userId, accountId: p.accountId, purchaseId: p.purchaseId, eventId: event.id, riskScore: verdict.riskScore, reasons: verdict.reasons });
        }
      }
    }
    await writePosition(trx, event.id);
    return alert;
  });
}

export function startConsumer(env: ServiceEnv, bus: AlertBus): WorkerLoop {
  let position: number | null = null;
  let failures = 0;
  return new WorkerLoop('alerts consumer', async (loop) => {
    try {
      const base = env.peers.payments;
      if (!base) throw new Error('the payments service URL is not known yet');
      if (position === null) position = await readPosition(env.db);
      const { events } = await callInternal<{ events: FeedEvent[] }>(base, env.internalKeyFor('payments'), 'events', { after: position, limit: BATCH_SIZE }, { timeoutMs: FEED_TIMEOUT_MS });
      for (const event of events) {
        if (!loop.isRunning) return 0;
        const alert = await applyEvent(env.db, event);
        position = Math.max(position, event.id);
        if (alert) bus.publish(alert);
      }
      if (failures >= LOG_AFTER_FAILURES) console.warn(`[alerts] event feed reachable again after ${failures} failed attempt(s); position ${position}`);
      failures = 0;
      return events.length >= BATCH_SIZE ? 0 : POLL_INTERVAL_MS;
    } catch (err) {
      failures += 1;
      position = null; // re-read the stored position: it is the truth
      // A single failed poll is routine (e.g. payments restarting or shutting down first): stay quiet.
      if (failures === LOG_AFTER_FAILURES || failures % 20 === 0) console.warn(`[alerts] event feed unavailable (attempt ${failures}): ${err instanceof Error ? err.message : String(err)}`);
      return backoff(failures, RETRY_MIN_MS, RETRY_MAX_MS);
    }
  });
}
