/**
 * The alerts consumer: long-polls the payments event feed (POST /internal/events on the payments
 * service, `waitMs`: the answer comes as soon as a purchase commits) from the position stored in
 * the alerts database, while it holds the consumer lease (lease.ts: one worker at a time across
 * alerts processes sharing the database), and for each event, in one
 * transaction: records the purchase in the account's history, runs the rules, inserts the alert
 * (if any) and advances the position. Delivery is at least once (the position only moves in the
 * transaction that applied the event), processing is idempotent by event id (the position check
 * and the primary key of purchase_history, plus one alert per purchase), and it resumes where it
 * stopped after a restart. Payments being down only delays it: it retries with backoff.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { callInternal } from '../../lib/transport/internal-client.js';
import type { ServiceEnv } from '../definition.js';
import type { AlertBus } from './bus.js';
import { accountHistory, insertAlert, isRecorded, readPosition, recordPurchase, writePosition, type ChargeAlertRow } from './data.js';
import { ConsumerLease, LEASE_RETRY_MS, LeaseLostError } from './lease.js';
import { backoff, WorkerLoop } from './loop.js';
import { evaluate } from './rules.js';

/**
 * Long-poll wait per feed request: payments answers as soon as a movement commits, or after this
 * with no events. Well under the lease TTL, so the lease is renewed in time between polls.
 */
export const FEED_WAIT_MS = 5_000;
/**
 * Pause before the next poll when the feed answered empty well before the wait ended (a payments
 * service that does not wait, or one that is stopping): never spin.
 */
export const POLL_INTERVAL_MS = 150;
/** Events per feed request. */
export const BATCH_SIZE = 100;
/** Backoff after a failed poll (payments down, network error), from min to max. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 5_000;
/** Consecutive failed polls before the outage is logged. */
export const LOG_AFTER_FAILURES = 3;
/** Feed request timeout, on top of the long-poll wait. */
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
 * Applies one page of feed events, in id order, in ONE transaction: records each purchase in its
 * account's history, runs the rules, inserts the alerts, and advances the position once, to the
 * last event. All or nothing: after a failure the whole page is read again from the stored
 * position (at least once; events at or below the position are skipped, so at most once in
 * effect). Events that are not purchases cost nothing but the position write. Returns the alerts
 * raised, for publishing after the commit. With a lease, the transaction renews it first and fails
 * (LeaseLostError) when another worker holds it.
 */
export async function applyEvents(db: Knex, events: readonly FeedEvent[], lease?: ConsumerLease): Promise<ChargeAlertRow[]> {
  if (events.length === 0) return [];
  return db.transaction(async (trx) => {
    if (lease) await lease.fence(trx);
    let position = await readPosition(trx);
    const alerts: ChargeAlertRow[] = [];
    for (const event of events) {
      if (event.id <= position) continue;
      const alert = event.type === 'PURCHASE_POSTED' ? await applyPurchase(trx, event) : null;
      if (alert) alerts.push(alert);
      position = event.id;
    }
    await writePosition(trx, position);
    return alerts;
  });
}

/** Applies one event in its own transaction (see applyEvents): the alert it raised, or null. */
export async function applyEvent(db: Knex, event: FeedEvent, lease?: ConsumerLease): Promise<ChargeAlertRow | null> {
  return (await applyEvents(db, [event], lease))[0] ?? null;
}

async function applyPurchase(trx: Knex.Transaction, event: FeedEvent): Promise<ChargeAlertRow | null> {
  if (await isRecorded(trx, event.id)) return null;
  const parsed = PurchasePosted.safeParse(event.payload);
  if (!parsed.success) {
    // A malformed event is a producer bug: skip it loudly rather than block the feed forever.
    console.error(`[alerts] skipping malformed PURCHASE_POSTED event ${event.id}: ${parsed.error.message}`);
    return null;
  }
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
  if (!verdict.alert) return null;
  return insertAlert(trx, { userId: p.userId, accountId: p.accountId, purchaseId: p.purchaseId, eventId: event.id, riskScore: verdict.riskScore, reasons: verdict.reasons });
}

export interface AlertConsumer {
  readonly loop: WorkerLoop;
  readonly lease: ConsumerLease;
  /** Whether this worker held the lease at its last attempt. */
  readonly leader: boolean;
  /** Events this worker applied (tests: a standby applies none). */
  readonly applied: number;
  start(): void;
  /** Stops the loop (aborting a pending long poll) and releases the lease. */
  stop(): Promise<void>;
}

export function startConsumer(env: ServiceEnv, bus: AlertBus, lease: ConsumerLease = new ConsumerLease(env.db)): AlertConsumer {
  let position: number | null = null;
  let failures = 0;
  let leader = false;
  let applied = 0;
  let earlyEmpty = 0;
  const loop = new WorkerLoop('alerts consumer', async (loop) => {
    try {
      if (!(await lease.acquire())) {
        if (leader) console.warn(`[alerts] consumer lease taken over by another worker; standing by`);
        leader = false;
        position = null;
        return LEASE_RETRY_MS;
      }
      if (!leader) position = null; // (re)gained the lease: the stored position is the truth
      leader = true;
      const base = env.peers.payments;
      if (!base) throw new Error('the payments service URL is not known yet');
      if (position === null) position = await readPosition(env.db);
      const asked = Date.now();
      const { events } = await callInternal<{ events: FeedEvent[] }>(
        base,
        env.internalKeyFor('payments'),
        'events',
        { after: position, limit: BATCH_SIZE, waitMs: FEED_WAIT_MS },
        { timeoutMs: FEED_WAIT_MS + FEED_TIMEOUT_MS, signal: loop.signal },
      );
      if (!loop.isRunning) return 0;
      const alerts = await applyEvents(env.db, events, lease);
      applied += events.length;
      position = Math.max(position, events.at(-1)?.id ?? position);
      for (const alert of alerts) await bus.publish(alert);
      if (failures >= LOG_AFTER_FAILURES) console.warn(`[alerts] event feed reachable again after ${failures} failed attempt(s); position ${position}`);
      failures = 0;
      // Re-poll at once: the feed itself waits for the next commit. An empty answer well before the
      // wait ended means payments did not wait (e.g. it is stopping: asking again at once lets it
      // close the connection); twice in a row, pause instead of spinning.
      earlyEmpty = events.length === 0 && Date.now() - asked < FEED_WAIT_MS / 2 ? earlyEmpty + 1 : 0;
      return earlyEmpty >= 2 ? POLL_INTERVAL_MS : 0;
    } catch (err) {
      position = null; // re-read the stored position: it is the truth
      if (!loop.isRunning) return 0; // stopping: the long poll was aborted
      if (err instanceof LeaseLostError) {
        console.warn(`[alerts] ${err.message}; standing by`);
        leader = false;
        return LEASE_RETRY_MS;
      }
      failures += 1;
      // A single failed poll is routine (e.g. payments restarting or shutting down first): stay quiet.
      if (failures === LOG_AFTER_FAILURES || failures % 20 === 0) console.warn(`[alerts] event feed unavailable (attempt ${failures}): ${err instanceof Error ? err.message : String(err)}`);
      return backoff(failures, RETRY_MIN_MS, RETRY_MAX_MS);
    }
  });
  return {
    loop,
    lease,
    get leader() {
      return leader;
    },
    get applied() {
      return applied;
    },
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      if (leader) await lease.release().catch((err: unknown) => console.warn(`[alerts] could not release the consumer lease: ${err instanceof Error ? err.message : String(err)}`));
      leader = false;
    },
  };
}
