/**
 * The ledger's SQL, and the only ledger SQL of the write path: the write lock, locked reads of
 * ledger accounts, journal entries with their postings and cached balances, the outbox (append
 * and read) and account freezes. Every write runs inside ledgerTransaction, which
 *   1. takes the write lock first (SQLite: the first statement is a write, which is what
 *      `BEGIN IMMEDIATE` does, so no other connection or process can interleave; PostgreSQL:
 *      `SELECT ... FOR UPDATE` on the touched ledger accounts, in id order, see lockAccountRows),
 *   2. lets the caller read the touched accounts under that lock and check the rules in memory
 *      (rules.ts), so one transaction can check several entries against the running balances,
 *   3. inserts the journal entries and their postings and writes the new cached balances
 *      (writeEntries: multi-row inserts and one UPDATE), and appends the outbox events last.
 * No rule is decided here: this file stores what rules.ts accepted.
 */
import type { Knex } from 'knex';
import { isSqlite } from '../../../lib/db.js';
import { toLedgerAccount } from '../data.js';
import type { NewEntry } from './rules.js';

/**
 * Runs `fn` in a ledger write transaction with the write lock already held (see the module
 * comment). Everything `fn` reads through `trx` is then current until commit. Use `trx` only:
 * on SQLite knex has one pooled connection, so a query through `db` inside `fn` would wait for
 * the connection `trx` holds.
 */
export async function ledgerTransaction<T>(db: Knex, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    if (isSqlite(db)) {
      // knex only issues a deferred `BEGIN`; a write as the very first statement takes SQLite's
      // RESERVED lock before any read snapshot exists (as BEGIN IMMEDIATE would), waiting up to
      // busy_timeout for another process's writer.
      await trx('ledger_write_lock')
        .where({ id: 1 })
        .update({ version: trx.raw('version + 1') });
    }
    return fn(trx);
  });
}

/** A ledger account row as stored (snake_case), including the settlement-account merchant columns. */
export type RawAccountRow = Parameters<typeof toLedgerAccount>[0] & {
  merchant_name?: string | null;
  merchant_category?: string | null;
  merchant_country?: string | null;
  merchant_mcc?: string | null;
};

/** Which ledger accounts one transaction reads under the lock. */
export interface AccountSelection {
  /** By id. */
  ids: readonly string[];
  /** Settlement accounts, by merchant id. */
  merchantIds: readonly string[];
  /** Accounts of these owners whose kind is one of `kinds` and currency one of `currencies`. */
  owned: { userIds: readonly string[]; kinds: readonly string[]; currencies: readonly string[] };
}

/**
 * Reads the selected ledger accounts under the write lock, in one statement: on PostgreSQL it
 * locks their rows (`FOR UPDATE`, in id order, so two transactions never wait on each other in a
 * cycle); on SQLite the transaction already holds the database's single write lock.
 */
export async function lockAccountRows(trx: Knex.Transaction, sel: AccountSelection): Promise<RawAccountRow[]> {
  const ids = [...new Set(sel.ids)].sort();
  const merchantIds = [...new Set(sel.merchantIds)].sort();
  const owners = [...new Set(sel.owned.userIds)].sort();
  const byOwner = owners.length > 0 && sel.owned.kinds.length > 0 && sel.owned.currencies.length > 0;
  if (ids.length === 0 && merchantIds.length === 0 && !byOwner) return [];
  const q = trx('ledger_accounts')
    .select('*')
    .where((w) => {
      if (ids.length > 0) w.orWhereIn('id', ids);
      if (merchantIds.length > 0) w.orWhereIn('merchant_id', merchantIds);
      if (byOwner) {
        w.orWhere((o) =>
          o
            .whereIn('owner_user_id', owners)
            .whereIn('kind', [...new Set(sel.owned.kinds)])
            .whereIn('currency', [...new Set(sel.owned.currencies)]),
        );
      }
    })
    .orderBy('id');
  if (!isSqlite(trx)) q.forUpdate();
  return (await q) as RawAccountRow[];
}

/**
 * Writes entries the rules accepted, inside the ledger transaction: one multi-row insert for the
 * journal entries, one for their postings, and one UPDATE for all the new cached balances
 * (`balances`: account id -> balance after every entry).
 */
export async function writeEntries(trx: Knex.Transaction, entries: readonly NewEntry[], balances: ReadonlyMap<string, bigint>): Promise<void> {
  if (entries.length === 0) return;
  await trx('journal_entries').insert(entries.map((e) => ({ id: e.id, kind: e.kind, description: e.description, posted_at: e.postedAt })));
  await trx('postings').insert(
    entries.flatMap((entry) =>
      entry.postings.map((p) => ({
        entry_id: entry.id,
        account_id: p.accountId,
        amount_minor: p.amountMinor.toString(),
        currency: p.currency,
        posted_at: entry.postedAt,
        merchant_id: p.merchantId ?? null,
        counterparty_user_id: p.counterpartyUserId ?? null,
      })),
    ),
  );
  const ids = [...balances.keys()].sort();
  if (ids.length === 0) return;
  const cases = ids.map(() => 'WHEN ? THEN CAST(? AS BIGINT)').join(' ');
  const bindings = ids.flatMap((id) => [id, balances.get(id)!.toString()]);
  await trx.raw(`UPDATE ledger_accounts SET balance_minor = CASE id ${cases} END WHERE id IN (${ids.map(() => '?').join(', ')})`, [...bindings, ...ids]);
}

export type OutboxEventType = 'PURCHASE_POSTED' | 'TRANSFER_POSTED';

export interface NewOutboxEvent {
  type: OutboxEventType;
  payload: Record<string, unknown>;
  createdAt: string;
  /** The W3C traceparent of the operation that posts it (lib/tracing.ts), when traced. */
  traceparent?: string | null;
}

/** A committed outbox event, as the `events` feed serves it. */
export interface OutboxEvent {
  id: number;
  type: OutboxEventType;
  createdAt: string;
  payload: Record<string, unknown>;
  /** Present when the operation that committed it was traced: the consumer continues that trace. */
  traceparent?: string;
}

/**
 * Key of the transaction-scoped advisory lock that serializes outbox appends on PostgreSQL
 * (an arbitrary constant: 0x706179626f78, "paybox" in ASCII).
 */
const OUTBOX_ADVISORY_LOCK_KEY = '123563950632824';

/**
 * Appends events to the outbox inside the ledger transaction (one multi-row insert), so an event
 * exists if and only if its entry committed. Event ids must become visible in id order for the
 * `events` feed (a consumer reads `id > position`; an id committed after a larger one would be
 * skipped): on SQLite writers are serialized already; on PostgreSQL the transaction takes
 * `pg_advisory_xact_lock` just before the insert, so id assignment and commit are serialized
 * across connections and processes (the lock is held until commit, and nothing after the insert
 * waits on another lock, so it adds no deadlock). Plain readers are not blocked.
 */
export async function appendOutboxEvents(trx: Knex.Transaction, events: readonly NewOutboxEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (!isSqlite(trx)) await trx.raw(`SELECT pg_advisory_xact_lock(${OUTBOX_ADVISORY_LOCK_KEY}::bigint)`);
  await trx('outbox_events').insert(
    events.map((e) => ({ event_type: e.type, payload: JSON.stringify(e.payload), created_at: e.createdAt, trace_parent: e.traceparent ?? null })),
  );
}

/** Committed events after an id, oldest first (ids become visible in order, see appendOutboxEvents). */
export async function readOutboxEvents(db: Knex, after: number, limit: number): Promise<OutboxEvent[]> {
  const rows = (await db('outbox_events')
    .select('id', 'event_type', 'payload', 'created_at', 'trace_parent')
    .where('id', '>', after)
    .orderBy('id', 'asc')
    .limit(limit)) as {
    id: unknown;
    event_type: OutboxEventType;
    payload: string;
    created_at: string;
    trace_parent: string | null;
  }[];
  return rows.map((r) => ({
    id: Number(r.id),
    type: r.event_type,
    createdAt: r.created_at,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    ...(r.trace_parent ? { traceparent: r.trace_parent } : {}),
  }));
}

export type FreezeResult = { frozen: true } | { frozen: false; error: 'ACCOUNT_NOT_FOUND' };

/**
 * Freezes a user's ledger account (idempotent) inside a ledger transaction, and records why. Run
 * under the write lock, a movement in flight either committed before the freeze or sees it.
 */
export async function freezeAccountIn(trx: Knex.Transaction, accountId: string, alertId: string, frozenAt: string): Promise<FreezeResult> {
  const row = (await trx('ledger_accounts').select('id', 'frozen').where({ id: accountId }).whereNotNull('owner_user_id').first()) as
    { id: string; frozen: unknown } | undefined;
  if (!row) return { frozen: false, error: 'ACCOUNT_NOT_FOUND' };
  if (!(row.frozen === true || row.frozen === 1)) await trx('ledger_accounts').where({ id: accountId }).update({ frozen: true });
  const seen = await trx('account_freezes').where({ account_id: accountId, alert_id: alertId }).first();
  if (!seen) await trx('account_freezes').insert({ account_id: accountId, alert_id: alertId, frozen_at: frozenAt });
  return { frozen: true };
}
