/**
 * Applying payments feed events to the alerts database, for the consumer (consumer.ts): for each
 * PURCHASE_POSTED event, in the page's one transaction, record the purchase in the account's
 * history, run the rules, insert the alert (if any), and advance the position. Processing is
 * idempotent by event id (the position check and the primary key of purchase_history, plus one
 * alert per purchase), so a page read again after a failure changes nothing twice.
 *
 * Traces: an event that carries the traceparent of the operation that committed it (the payments
 * outbox stores it) is applied in a consumer span continuing that trace, across the feed's
 * asynchronous hop; the alert it raises keeps that span's traceparent for the subscription bridge.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Logger } from '../../lib/log.js';
import { continueTrace, currentTraceparent } from '../../lib/tracing.js';
import { accountHistory, insertAlert, isRecorded, readPosition, recordPurchase, writePosition, type ChargeAlertRow } from './data.js';
import type { ConsumerLease } from './lease.js';
import { evaluate } from './rules.js';

export interface FeedEvent {
  id: number;
  type: string;
  createdAt: string;
  payload: unknown;
  /** The W3C traceparent of the operation that committed the event, when it was traced. */
  traceparent?: string;
}

const PurchasePosted = z.object({
  purchaseId: z.string().min(1),
  accountId: z.string().min(1),
  userId: z.string().min(1),
  userCountry: z
    .string()
    .min(2)
    .nullable()
    .optional()
    .transform((v) => v ?? null),
  merchantId: z.string().min(1),
  merchantCategory: z.string().min(1),
  merchantCountry: z.string().min(2),
  amountMinor: z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]),
  currency: z.string().length(3),
  postedAt: z.string().min(10),
  cardPresent: z.boolean().optional().default(true),
});

/**
 * Applies one page of feed events, in id order, in ONE transaction: records each purchase in its
 * account's history, runs the rules, inserts the alerts, and advances the position once, to the
 * last event. All or nothing: after a failure the whole page is read again from the stored
 * position (at least once; events at or below the position are skipped, so at most once in
 * effect). Events that are not purchases cost nothing but the position write. Returns the alerts
 * raised, for publishing after the commit. With a lease, the transaction renews it first and fails
 * (LeaseLostError) when another worker holds it.
 */
export interface ApplyOptions {
  /** Where a skipped (malformed) event is reported: the alerts service's logger. */
  log: Logger;
  /** The consumer's lease, renewed (fenced) inside the page's transaction. */
  lease?: ConsumerLease;
}

export async function applyEvents(db: Knex, events: readonly FeedEvent[], opts: ApplyOptions): Promise<ChargeAlertRow[]> {
  if (events.length === 0) return [];
  return db.transaction(async (trx) => {
    if (opts.lease) await opts.lease.fence(trx);
    let position = await readPosition(trx);
    const alerts: ChargeAlertRow[] = [];
    for (const event of events) {
      if (event.id <= position) continue;
      const alert = event.type === 'PURCHASE_POSTED' ? await traced(event, () => applyPurchase(trx, event, opts.log)) : null;
      if (alert) alerts.push(alert);
      position = event.id;
    }
    await writePosition(trx, position);
    return alerts;
  });
}

/** Applies one event in its own transaction (see applyEvents): the alert it raised, or null. */
export async function applyEvent(db: Knex, event: FeedEvent, opts: ApplyOptions): Promise<ChargeAlertRow | null> {
  return (await applyEvents(db, [event], opts))[0] ?? null;
}

/** Runs `fn` in a consumer span continuing the event's trace, when it has one (an untraced event opens none). */
function traced<T>(event: FeedEvent, fn: () => Promise<T>): Promise<T> {
  if (!event.traceparent) return fn();
  const attributes = { 'messaging.operation.type': 'process', 'messaging.destination.name': 'payments outbox', 'messaging.message.id': String(event.id) };
  return continueTrace('alerts', `process ${event.type}`, event.traceparent, attributes, fn);
}

async function applyPurchase(trx: Knex.Transaction, event: FeedEvent, log: Logger): Promise<ChargeAlertRow | null> {
  if (await isRecorded(trx, event.id)) return null;
  const parsed = PurchasePosted.safeParse(event.payload);
  if (!parsed.success) {
    // A malformed event is a producer bug: skip it loudly rather than block the feed forever.
    log.error({ eventId: event.id, err: parsed.error.message }, 'skipping a malformed PURCHASE_POSTED event');
    return null;
  }
  const p = parsed.data;
  const amountMinor = BigInt(p.amountMinor);
  const history = await accountHistory(trx, p.accountId, p.currency, event.id);
  const verdict = evaluate(
    {
      accountId: p.accountId,
      amountMinor,
      currency: p.currency,
      merchantCategory: p.merchantCategory,
      merchantCountry: p.merchantCountry,
      userCountry: p.userCountry,
      postedAt: p.postedAt,
      cardPresent: p.cardPresent,
    },
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
  if (!verdict.alert) return null;
  return insertAlert(trx, {
    userId: p.userId,
    accountId: p.accountId,
    purchaseId: p.purchaseId,
    eventId: event.id,
    riskScore: verdict.riskScore,
    reasons: verdict.reasons,
    traceparent: currentTraceparent(),
  });
}
