/**
 * The payments service's signed internal routes (POST /internal/<name>, lib/internal.ts), used by
 * the alerts service. Contract (docs/money.md, "Internal routes"):
 *
 * - `events` `{ after: number, limit: number }` (after >= 0, default 0; limit 1..500, default 100)
 *   -> `{ events: [{ id, type: 'PURCHASE_POSTED' | 'TRANSFER_POSTED', createdAt, payload }] }`,
 *   ids ascending, every id > after. Events are committed in id order (see ledger.appendOutbox).
 * - `freeze` `{ accountId: string, alertId: string }` -> `{ frozen: true }` (also when already
 *   frozen), or `{ frozen: false, error: 'ACCOUNT_NOT_FOUND' }` for an id that is not a user's
 *   ledger account. Malformed bodies get HTTP 400.
 */
import type { Knex } from 'knex';
import { HttpError } from '../../lib/http.js';
import type { InternalRoute } from '../../lib/subgraph.js';
import { ledgerTransaction } from './ledger.js';
import { EVENTS_MAX_LIMIT } from './limits.js';

export interface OutboxEvent {
  id: number;
  type: 'PURCHASE_POSTED' | 'TRANSFER_POSTED';
  createdAt: string;
  payload: Record<string, unknown>;
}

function field(body: unknown, name: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

/** Events after an id, oldest first. */
export async function readEvents(db: Knex, after: number, limit: number): Promise<OutboxEvent[]> {
  const rows = (await db('outbox_events').select('id', 'event_type', 'payload', 'created_at').where('id', '>', after).orderBy('id', 'asc').limit(limit)) as {
    id: unknown;
    event_type: OutboxEvent['type'];
    payload: string;
    created_at: string;
  }[];
  return rows.map((r) => ({ id: Number(r.id), type: r.event_type, createdAt: r.created_at, payload: JSON.parse(r.payload) as Record<string, unknown> }));
}

export type FreezeResult = { frozen: true } | { frozen: false; error: 'ACCOUNT_NOT_FOUND' };

/** Freezes a user's ledger account (idempotent), under the ledger write lock, and records why. */
export async function freezeAccount(db: Knex, accountId: string, alertId: string, now: Date = new Date()): Promise<FreezeResult> {
  return ledgerTransaction(db, async (trx) => {
    const row = (await trx('ledger_accounts').select('id', 'frozen').where({ id: accountId }).whereNotNull('owner_user_id').first()) as { id: string; frozen: unknown } | undefined;
    if (!row) return { frozen: false, error: 'ACCOUNT_NOT_FOUND' } as const;
    if (!(row.frozen === true || row.frozen === 1)) await trx('ledger_accounts').where({ id: accountId }).update({ frozen: true });
    const seen = await trx('account_freezes').where({ account_id: accountId, alert_id: alertId }).first();
    if (!seen) await trx('account_freezes').insert({ account_id: accountId, alert_id: alertId, frozen_at: now.toISOString() });
    return { frozen: true } as const;
  });
}

export const internalRoutes: Readonly<Record<string, InternalRoute>> = {
  events: async (env, body) => {
    const after = field(body, 'after') ?? 0;
    const limit = field(body, 'limit') ?? 100;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) throw new HttpError(400, '"after" must be a non-negative integer event id', 'BAD_REQUEST');
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > EVENTS_MAX_LIMIT) {
      throw new HttpError(400, `"limit" must be an integer from 1 to ${EVENTS_MAX_LIMIT}`, 'BAD_REQUEST');
    }
    return { events: await readEvents(env.db, after, limit) };
  },
  freeze: async (env, body) => {
    const accountId = field(body, 'accountId');
    const alertId = field(body, 'alertId');
    if (typeof accountId !== 'string' || accountId.length < 1 || accountId.length > 64) throw new HttpError(400, '"accountId" must be an account id', 'BAD_REQUEST');
    if (typeof alertId !== 'string' || alertId.length < 1 || alertId.length > 64) throw new HttpError(400, '"alertId" must be an alert id', 'BAD_REQUEST');
    return freezeAccount(env.db, accountId, alertId);
  },
};
