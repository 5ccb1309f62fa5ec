/**
 * The double-entry ledger: the only code that writes journal entries, postings and cached
 * balances. Every write happens in one database transaction that
 *   1. takes the write lock first (SQLite: the first statement is a write, which is what
 *      `BEGIN IMMEDIATE` does, so no other connection or process can interleave; PostgreSQL:
 *      `SELECT ... FOR UPDATE` on the touched ledger accounts, in id order),
 *   2. re-reads the touched accounts under that lock and checks the rules (applyEntry, in memory,
 *      so one transaction can check several entries against the running balances),
 *   3. inserts the journal entries and their postings and writes the new cached balances
 *      (writeEntries: multi-row inserts and one UPDATE).
 *
 * Sign convention: a positive posting is money into the account, a negative one money out.
 * Deposit accounts (checking, savings, debit) never go below zero; a credit card's balance is
 * negative when money is owed and never below minus its credit limit; frozen accounts refuse
 * debits. System accounts (merchant settlement, external world, fees) are unconstrained.
 */
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { CURRENCIES } from '../../lib/money.js';
import type { TransactionKind } from './data.js';
import { toLedgerAccount, type LedgerAccountRow } from './data.js';

export type LedgerErrorCode = 'UNBALANCED_ENTRY' | 'INVALID_ENTRY' | 'ACCOUNT_NOT_FOUND' | 'CURRENCY_MISMATCH' | 'ACCOUNT_FROZEN' | 'INSUFFICIENT_FUNDS';

/** A posting the ledger refused; nothing was written. */
export class LedgerError extends Error {
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
    readonly accountId: string | null = null,
  ) {
    super(message);
    this.name = 'LedgerError';
  }
}

export interface NewPosting {
  accountId: string;
  /** Signed minor units: positive into the account, negative out of it. Never zero. */
  amountMinor: bigint;
  currency: string;
  merchantId?: string | null;
  counterpartyUserId?: string | null;
}

export interface NewEntry {
  id: string;
  kind: TransactionKind;
  description: string;
  /** ISO-8601 UTC timestamp. */
  postedAt: string;
  postings: readonly NewPosting[];
}

export interface PostedEntry {
  entryId: string;
  /** The accounts' cached balances after the entry. */
  balances: Map<string, bigint>;
}

/** Account kinds that hold the customer's own money: never below zero. */
export const DEPOSIT_KINDS: ReadonlySet<string> = new Set(['CHECKING', 'SAVINGS', 'DEBIT_CARD']);
/** Account kinds that borrow: never owe more than the credit limit. */
export const CREDIT_KINDS: ReadonlySet<string> = new Set(['CREDIT_CARD']);

/** The lowest balance an account may reach, or null when it is unconstrained. */
export function floorOf(account: LedgerAccountRow): bigint | null {
  if (DEPOSIT_KINDS.has(account.kind)) return 0n;
  if (CREDIT_KINDS.has(account.kind)) return -(account.creditLimitMinor ?? 0n);
  return null;
}

/** What can be spent now: deposit balance, or the card's unused credit. */
export function availableOf(account: LedgerAccountRow): bigint {
  const floor = floorOf(account);
  return floor === null ? account.balanceMinor : account.balanceMinor - floor;
}

function isTransaction(db: Knex): db is Knex.Transaction {
  return (db as Knex.Transaction).isTransaction === true;
}

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
      await trx('ledger_write_lock').where({ id: 1 }).update({ version: trx.raw('version + 1') });
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

/**
 * Reads ledger accounts (by id, and settlement accounts by merchant id) under the write lock, in
 * one statement: on PostgreSQL it locks their rows (`FOR UPDATE`, in id order, so two
 * transactions never wait on each other in a cycle); on SQLite the transaction already holds the
 * database's single write lock.
 */
export async function lockAccountRows(trx: Knex.Transaction, ids: readonly string[], merchantIds: readonly string[] = []): Promise<RawAccountRow[]> {
  const sortedIds = [...new Set(ids)].sort();
  const sortedMerchants = [...new Set(merchantIds)].sort();
  if (sortedIds.length === 0 && sortedMerchants.length === 0) return [];
  const q = trx('ledger_accounts')
    .select('*')
    .where((w) => {
      if (sortedIds.length > 0) w.whereIn('id', sortedIds);
      if (sortedMerchants.length > 0) w.orWhereIn('merchant_id', sortedMerchants);
    })
    .orderBy('id');
  if (!isSqlite(trx)) q.forUpdate();
  return (await q) as RawAccountRow[];
}

/** lockAccounts by id only, as typed rows. */
export async function lockAccounts(trx: Knex.Transaction, ids: readonly string[]): Promise<Map<string, LedgerAccountRow>> {
  const rows = await lockAccountRows(trx, ids);
  return new Map(rows.map((r) => [r.id, toLedgerAccount(r)]));
}

/** Throws unless the postings are well-formed and add up to zero in every currency. */
export function assertBalanced(entry: NewEntry): void {
  if (entry.postings.length < 2) throw new LedgerError('INVALID_ENTRY', `journal entry ${entry.id} needs at least two postings`);
  const sums = new Map<string, bigint>();
  for (const p of entry.postings) {
    if (typeof p.amountMinor !== 'bigint') throw new LedgerError('INVALID_ENTRY', `posting amounts must be bigint minor units (entry ${entry.id})`);
    if (p.amountMinor === 0n) throw new LedgerError('INVALID_ENTRY', `zero posting in entry ${entry.id}`);
    if (CURRENCIES[p.currency] === undefined) throw new LedgerError('INVALID_ENTRY', `unsupported currency ${p.currency} in entry ${entry.id}`);
    sums.set(p.currency, (sums.get(p.currency) ?? 0n) + p.amountMinor);
  }
  for (const [currency, sum] of sums) {
    if (sum !== 0n) throw new LedgerError('UNBALANCED_ENTRY', `journal entry ${entry.id} does not balance in ${currency} (off by ${sum} minor units)`);
  }
}

/**
 * Checks an entry against the accounts' current state (read under the lock, possibly already
 * moved by earlier entries of the same transaction) and returns the touched accounts' balances
 * after it. Pure: throws a LedgerError (and changes nothing) when a rule is broken.
 */
export function applyEntry(accounts: ReadonlyMap<string, LedgerAccountRow>, entry: NewEntry): Map<string, bigint> {
  assertBalanced(entry);
  const deltas = new Map<string, bigint>();
  for (const p of entry.postings) {
    const account = accounts.get(p.accountId);
    if (!account) throw new LedgerError('ACCOUNT_NOT_FOUND', `no ledger account ${p.accountId}`, p.accountId);
    if (account.currency !== p.currency) throw new LedgerError('CURRENCY_MISMATCH', `account ${p.accountId} holds ${account.currency}, not ${p.currency}`, p.accountId);
    deltas.set(p.accountId, (deltas.get(p.accountId) ?? 0n) + p.amountMinor);
  }
  const balances = new Map<string, bigint>();
  for (const [id, delta] of deltas) {
    const account = accounts.get(id)!;
    const next = account.balanceMinor + delta;
    if (delta < 0n) {
      if (account.frozen) throw new LedgerError('ACCOUNT_FROZEN', `account ${id} is frozen`, id);
      const floor = floorOf(account);
      if (floor !== null && next < floor) {
        throw new LedgerError('INSUFFICIENT_FUNDS', `account ${id} has ${availableOf(account)} minor units available, needs ${-delta}`, id);
      }
    }
    balances.set(id, next);
  }
  return balances;
}

/**
 * Writes entries already checked with applyEntry, inside the ledger transaction: one multi-row
 * insert for the journal entries, one for their postings, and one UPDATE for all the new cached
 * balances (`balances`: account id -> balance after every entry).
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

/** Posts inside an open ledger transaction (see ledgerTransaction). */
async function postIn(trx: Knex.Transaction, entry: NewEntry): Promise<PostedEntry> {
  assertBalanced(entry);
  const accounts = await lockAccounts(
    trx,
    entry.postings.map((p) => p.accountId),
  );
  const balances = applyEntry(accounts, entry);
  await writeEntries(trx, [entry], balances);
  return { entryId: entry.id, balances };
}

/**
 * Posts a balanced journal entry: inserts the entry and its postings and updates the cached
 * balances, atomically, or throws a LedgerError and writes nothing. Given a transaction (from
 * ledgerTransaction) it joins it; given a database it opens its own ledger transaction.
 */
export async function postEntry(db: Knex, entry: NewEntry): Promise<PostedEntry> {
  if (isTransaction(db)) return postIn(db, entry);
  return ledgerTransaction(db, (trx) => postIn(trx, entry));
}

export type OutboxEventType = 'PURCHASE_POSTED' | 'TRANSFER_POSTED';

export interface NewOutboxEvent {
  type: OutboxEventType;
  payload: Record<string, unknown>;
  createdAt: string;
}

/**
 * Key of the transaction-scoped advisory lock that serializes outbox appends on PostgreSQL
 * (an arbitrary constant: 0x706179626f78, "paybox" in ASCII).
 */
export const OUTBOX_ADVISORY_LOCK_KEY = '123563950632824';

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
  await trx('outbox_events').insert(events.map((e) => ({ event_type: e.type, payload: JSON.stringify(e.payload), created_at: e.createdAt })));
}

/** One event; see appendOutboxEvents. */
export async function appendOutbox(trx: Knex.Transaction, type: OutboxEventType, payload: Record<string, unknown>, createdAt: string): Promise<void> {
  await appendOutboxEvents(trx, [{ type, payload, createdAt }]);
}
