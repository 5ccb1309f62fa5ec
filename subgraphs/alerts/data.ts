/** Data access for the alerts subgraph: alerts, the consumer's position, history, freeze outbox. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { HISTORY_WINDOW, type AccountHistory, type Reason } from './rules.js';

export type ChargeAlertStatus = 'OPEN' | 'CONFIRMED_LEGITIMATE' | 'CONFIRMED_FRAUD';

export interface ChargeAlertRow {
  id: string;
  userId: string;
  accountId: string;
  purchaseId: string;
  status: ChargeAlertStatus;
  riskScore: number;
  reasons: string[];
  createdAt: string;
  /** The payments event that raised the alert (a monotonic cursor); null for legacy rows. */
  eventId: number | null;
  resolvedAt: string | null;
  /** The W3C traceparent of the consumer span that raised it (lib/tracing.ts), when traced: the bridge continues it. */
  traceparent?: string;
}

interface RawAlert {
  id: string;
  user_id: string;
  account_id: string;
  purchase_id: string;
  status: ChargeAlertStatus;
  risk_score: number;
  reasons: string;
  created_at: string;
  event_id: number | string | null;
  resolved_at: string | null;
  trace_parent?: string | null;
}

function toAlert(r: RawAlert): ChargeAlertRow {
  return {
    id: r.id,
    userId: r.user_id,
    accountId: r.account_id,
    purchaseId: r.purchase_id,
    status: r.status,
    riskScore: Number(r.risk_score),
    reasons: JSON.parse(r.reasons) as string[],
    createdAt: r.created_at,
    eventId: r.event_id === null || r.event_id === undefined ? null : Number(r.event_id),
    resolvedAt: r.resolved_at ?? null,
    ...(r.trace_parent ? { traceparent: r.trace_parent } : {}),
  };
}

export async function alertsByIds(db: Knex, ids: readonly string[]): Promise<ChargeAlertRow[]> {
  return ((await db('charge_alerts').select('*').whereIn('id', ids)) as RawAlert[]).map(toAlert);
}

export async function alertById(db: Knex, id: string): Promise<ChargeAlertRow | null> {
  const row = (await db('charge_alerts').select('*').where('id', id).first()) as RawAlert | undefined;
  return row ? toAlert(row) : null;
}

export async function alertsOfUser(db: Knex, userId: string): Promise<ChargeAlertRow[]> {
  return (
    (await db('charge_alerts')
      .select('*')
      .where('user_id', userId)
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])) as RawAlert[]
  ).map(toAlert);
}

/** The user's alerts raised by events after `cursor`, oldest first (subscription replay). */
export async function alertsOfUserAfter(db: Knex, userId: string, cursor: number): Promise<ChargeAlertRow[]> {
  return ((await db('charge_alerts').select('*').where('user_id', userId).where('event_id', '>', cursor).orderBy('event_id', 'asc')) as RawAlert[]).map(
    toAlert,
  );
}

/** How many of the user's alerts were raised by events after `cursor`, counting at most `limit`. */
export async function countAlertsOfUserAfter(db: Knex, userId: string, cursor: number, limit: number): Promise<number> {
  return ((await db('charge_alerts').select('id').where('user_id', userId).where('event_id', '>', cursor).limit(limit)) as unknown[]).length;
}

/**
 * A cursor (event id) such that every alert of the user raised at or after `since` is after it:
 * the event of the user's last alert raised before `since` (alerts are raised in event order), or 0.
 */
export async function cursorBefore(db: Knex, userId: string, since: string): Promise<number> {
  const row = (await db('charge_alerts').max({ c: 'event_id' }).where('user_id', userId).where('created_at', '<', since).first()) as
    { c: number | string | null } | undefined;
  return row?.c === null || row?.c === undefined ? 0 : Number(row.c);
}

// --- the consumer's position ----------------------------------------------------------------------

export const PAYMENTS_FEED = 'payments';

export async function readPosition(db: Knex, feed = PAYMENTS_FEED): Promise<number> {
  const row = (await db('consumer_positions').select('position').where('feed', feed).first()) as { position: number | string } | undefined;
  return row ? Number(row.position) : 0;
}

export async function writePosition(db: Knex, position: number, feed = PAYMENTS_FEED): Promise<void> {
  await db('consumer_positions').insert({ feed, position, updated_at: new Date().toISOString() }).onConflict('feed').merge(['position', 'updated_at']);
}

// --- spending history ---------------------------------------------------------------------------

export interface PurchaseRecord {
  eventId: number;
  purchaseId: string;
  accountId: string;
  userId: string;
  amountMinor: bigint;
  currency: string;
  merchantId: string;
  merchantCategory: string;
  merchantCountry: string;
  postedAt: string;
  cardPresent: boolean;
}

/** Whether an event was already recorded (idempotency by event id). */
export async function isRecorded(db: Knex, eventId: number): Promise<boolean> {
  return Boolean(await db('purchase_history').select('event_id').where('event_id', eventId).first());
}

export async function recordPurchase(db: Knex, p: PurchaseRecord): Promise<void> {
  await db('purchase_history').insert({
    event_id: p.eventId,
    purchase_id: p.purchaseId,
    account_id: p.accountId,
    user_id: p.userId,
    amount_minor: p.amountMinor.toString(),
    currency: p.currency,
    merchant_id: p.merchantId,
    merchant_category: p.merchantCategory,
    merchant_country: p.merchantCountry,
    posted_at: p.postedAt,
    card_present: p.cardPresent,
  });
}

/** The account's history before `beforeEventId`, as the rules need it: two small queries. */
export async function accountHistory(db: Knex, accountId: string, currency: string, beforeEventId: number): Promise<AccountHistory> {
  const recent = (await db('purchase_history')
    .select('amount_minor', 'currency', 'posted_at')
    .where('account_id', accountId)
    .where('event_id', '<', beforeEventId)
    .orderBy('event_id', 'desc')
    .limit(HISTORY_WINDOW)) as { amount_minor: number | string; currency: string; posted_at: string }[];
  const agg = (await db('purchase_history')
    .where('account_id', accountId)
    .where('event_id', '<', beforeEventId)
    .select('merchant_category')
    .count({ n: '*' })
    .groupBy('merchant_category')) as { merchant_category: string; n: number | string }[];
  return {
    purchaseCount: agg.reduce((sum, r) => sum + Number(r.n), 0),
    recentAmountsMinor: recent.filter((r) => r.currency === currency).map((r) => BigInt(r.amount_minor)),
    recentPostedAt: recent.map((r) => r.posted_at),
    categories: new Set(agg.map((r) => r.merchant_category)),
  };
}

// --- alerts ---------------------------------------------------------------------------------------

export interface NewAlert {
  userId: string;
  accountId: string;
  purchaseId: string;
  eventId: number;
  riskScore: number;
  reasons: readonly Reason[];
  /** See ChargeAlertRow.traceparent. */
  traceparent?: string | null;
}

/** Inserts an alert unless the purchase already has one; returns the new row or null. */
export async function insertAlert(db: Knex, a: NewAlert): Promise<ChargeAlertRow | null> {
  const raw: RawAlert = {
    id: `alt_${randomUUID().replace(/-/g, '')}`,
    user_id: a.userId,
    account_id: a.accountId,
    purchase_id: a.purchaseId,
    status: 'OPEN',
    risk_score: a.riskScore,
    reasons: JSON.stringify(a.reasons),
    created_at: new Date().toISOString(),
    event_id: a.eventId,
    resolved_at: null,
    trace_parent: a.traceparent ?? null,
  };
  const inserted = (await db('charge_alerts').insert(raw).onConflict('purchase_id').ignore().returning('id')) as unknown[];
  return inserted.length > 0 ? toAlert(raw) : null;
}

/**
 * Moves an OPEN alert to its resolution; returns false when it was no longer OPEN (a concurrent
 * resolution won).
 */
export async function resolveAlert(db: Knex, id: string, status: Exclude<ChargeAlertStatus, 'OPEN'>, at: string): Promise<boolean> {
  const n = await db('charge_alerts').where({ id, status: 'OPEN' }).update({ status, resolved_at: at });
  return n === 1;
}

// --- freeze commands (outbox to payments) -----------------------------------------------------------

export interface FreezeCommand {
  id: string;
  alertId: string;
  accountId: string;
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

interface RawFreeze {
  id: string;
  alert_id: string;
  account_id: string;
  status: FreezeCommand['status'];
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

function toFreeze(r: RawFreeze): FreezeCommand {
  return {
    id: r.id,
    alertId: r.alert_id,
    accountId: r.account_id,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
  };
}

export async function insertFreezeCommand(db: Knex, alertId: string, accountId: string, now: string): Promise<void> {
  await db('freeze_commands')
    .insert({
      id: `frz_${randomUUID().replace(/-/g, '')}`,
      alert_id: alertId,
      account_id: accountId,
      status: 'PENDING',
      attempts: 0,
      next_attempt_at: now,
      last_error: null,
      created_at: now,
      delivered_at: null,
    })
    .onConflict('alert_id')
    .ignore();
}

export async function dueFreezeCommands(db: Knex, now: string, limit: number): Promise<FreezeCommand[]> {
  const rows = (await db('freeze_commands')
    .select('*')
    .where('status', 'PENDING')
    .where('next_attempt_at', '<=', now)
    .orderBy('created_at', 'asc')
    .limit(limit)) as RawFreeze[];
  return rows.map(toFreeze);
}

export async function markFreeze(
  db: Knex,
  id: string,
  patch: { status: FreezeCommand['status']; attempts: number; nextAttemptAt?: string; lastError?: string | null; deliveredAt?: string | null },
): Promise<void> {
  await db('freeze_commands')
    .where('id', id)
    .update({
      status: patch.status,
      attempts: patch.attempts,
      ...(patch.nextAttemptAt !== undefined ? { next_attempt_at: patch.nextAttemptAt } : {}),
      ...(patch.lastError !== undefined ? { last_error: patch.lastError?.slice(0, 500) ?? null } : {}),
      ...(patch.deliveredAt !== undefined ? { delivered_at: patch.deliveredAt } : {}),
    });
}
