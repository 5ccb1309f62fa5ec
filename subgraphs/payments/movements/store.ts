/**
 * The SQL of money movement's own tables, run inside the ledger transaction a plan is given
 * (ledger/batch.ts `trx`): idempotency keys, the parties directory (who has which handle), the
 * daily transfer-usage counters, and the business records of accepted movements (transfers,
 * purchases). Reads are one statement each however many movements a batch holds; writes are
 * multi-row. No ledger table is touched here.
 */
import type { Knex } from 'knex';
import { insertRows, isSqlite } from '../../../lib/db.js';
import { toBigInt } from '../../../lib/money.js';
import { IDEMPOTENCY_RETENTION_HOURS } from '../limits.js';
import type { MovementRequest } from './types.js';

/** The idempotency scope of a request: a key is unique per user and mutation. */
export const scopeOf = (r: { userId: string; operation: string; key: string }) => `${r.userId}\u0000${r.operation}\u0000${r.key}`;

export interface StoredKey {
  hash: string;
  /** JSON of the stored result, e.g. {"transferId":"trf_..."}. */
  result: string;
}

/** Stored idempotency keys of the requests: scope -> { hash, result }. */
export async function storedKeys(trx: Knex.Transaction, reqs: readonly MovementRequest[]): Promise<Map<string, StoredKey>> {
  const scopes = new Map<string, MovementRequest>();
  for (const r of reqs) scopes.set(scopeOf(r), r);
  const rows = (await trx('idempotency_keys')
    .select('user_id', 'operation', 'idem_key', 'request_hash', 'result')
    .where((w) => {
      for (const r of scopes.values()) w.orWhere((q) => q.where({ user_id: r.userId, operation: r.operation, idem_key: r.key }));
    })) as { user_id: string; operation: string; idem_key: string; request_hash: string; result: string }[];
  return new Map(rows.map((r) => [scopeOf({ userId: r.user_id, operation: r.operation, key: r.idem_key }), { hash: r.request_hash, result: r.result }]));
}

/** A unique-key violation on idempotency_keys: another transaction stored the same key first. */
export function isIdempotencyConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string; constraint?: string };
  // node-sqlite3 reports SQLITE_CONSTRAINT, better-sqlite3 the extended SQLITE_CONSTRAINT_UNIQUE.
  const unique = e.code === '23505' || (/^SQLITE_CONSTRAINT/.test(e.code ?? '') && /UNIQUE/.test(e.message ?? ''));
  return unique && /idempotency_keys/.test(`${e.message ?? ''} ${e.constraint ?? ''}`);
}

export interface Party {
  userId: string;
  handle: string;
  country: string;
}

/** Recipients by normalized handle and purchasers by user id. One statement. */
export async function loadParties(
  trx: Knex.Transaction,
  handles: readonly string[],
  userIds: readonly string[],
): Promise<{ byHandle: Map<string, Party>; byUser: Map<string, Party> }> {
  const byHandle = new Map<string, Party>();
  const byUser = new Map<string, Party>();
  if (handles.length === 0 && userIds.length === 0) return { byHandle, byUser };
  const rows = (await trx('parties')
    .select('user_id', 'handle', 'country')
    .where((w) => {
      if (handles.length > 0) w.whereRaw(`lower(handle) IN (${handles.map(() => '?').join(', ')})`, [...handles]);
      if (userIds.length > 0) w.orWhereIn('user_id', userIds);
    })) as { user_id: string; handle: string; country: string }[];
  for (const r of rows) {
    if (byUser.has(r.user_id)) continue;
    const party = { userId: r.user_id, handle: r.handle, country: r.country };
    byUser.set(r.user_id, party);
    byHandle.set(r.handle.toLowerCase(), party);
  }
  return { byHandle, byUser };
}

/** Key of a daily-usage counter: (sender, currency, UTC day). */
export const usageKeyOf = (userId: string, currency: string, day: string) => `${userId}\u0000${currency}\u0000${day}`;

/**
 * The daily-usage counters of (sender, currency, day), read under the lock. PostgreSQL: the rows
 * are created if missing (ON CONFLICT DO NOTHING, in key order) and locked FOR UPDATE in key order,
 * so two processes sending for the same user (even from different accounts) serialize on them.
 * SQLite: the transaction holds the database write lock already.
 */
export async function loadUsage(trx: Knex.Transaction, keys: readonly { userId: string; currency: string; day: string }[]): Promise<Map<string, bigint>> {
  const usage = new Map<string, bigint>();
  const unique = new Map(keys.map((k) => [usageKeyOf(k.userId, k.currency, k.day), k]));
  if (unique.size === 0) return usage;
  const sorted = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k);
  const sqlite = isSqlite(trx);
  if (!sqlite) {
    await trx('transfer_daily_usage')
      .insert(sorted.map((k) => ({ user_id: k.userId, currency: k.currency, day: k.day, sent_minor: 0 })))
      .onConflict(['user_id', 'currency', 'day'])
      .ignore();
  }
  const q = trx('transfer_daily_usage')
    .select('user_id', 'currency', 'day', 'sent_minor')
    .where((w) => {
      for (const k of sorted) w.orWhere((o) => o.where({ user_id: k.userId, currency: k.currency, day: k.day }));
    })
    .orderBy([{ column: 'user_id' }, { column: 'currency' }, { column: 'day' }]);
  if (!sqlite) q.forUpdate();
  const rows = (await q) as { user_id: string; currency: string; day: string; sent_minor: unknown }[];
  for (const r of rows) usage.set(usageKeyOf(r.user_id, r.currency, r.day), toBigInt(r.sent_minor));
  return usage;
}

/** The rows of a batch's accepted movements, collected in order, written together. */
export interface MovementRecords {
  transfers: Record<string, unknown>[];
  purchases: Record<string, unknown>[];
  keys: Record<string, unknown>[];
  /** Daily-usage counters the batch moved: key -> new total. */
  usage: Map<string, bigint>;
}

export const noRecords = (): MovementRecords => ({ transfers: [], purchases: [], keys: [], usage: new Map() });

/** Writes the records with multi-row statements (after the ledger's entries, which they reference). */
export async function writeRecords(trx: Knex.Transaction, records: MovementRecords): Promise<void> {
  await insertRows(trx, 'transfers', records.transfers);
  await insertRows(trx, 'purchases', records.purchases);
  await insertRows(
    trx,
    'transfer_daily_usage',
    [...records.usage.keys()].sort().map((k) => {
      const [userId, currency, day] = k.split('\u0000') as [string, string, string];
      return { user_id: userId, currency, day, sent_minor: records.usage.get(k)!.toString() };
    }),
    { columns: ['user_id', 'currency', 'day'], update: ['sent_minor'] },
  );
  await insertRows(trx, 'idempotency_keys', records.keys);
}

/** Deletes idempotency keys older than the retention (at least 24 hours). Returns how many. */
export async function pruneIdempotencyKeys(db: Knex, now: Date): Promise<number> {
  const cutoff = new Date(now.getTime() - IDEMPOTENCY_RETENTION_HOURS * 3_600_000).toISOString();
  return db('idempotency_keys').where('created_at', '<', cutoff).delete();
}
