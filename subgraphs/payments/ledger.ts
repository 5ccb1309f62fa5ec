/**
 * The double-entry ledger: the only code that writes journal entries, postings and cached
 * balances. Every write happens in one database transaction that
 *   1. takes the write lock first (SQLite: the first statement is a write, which is what
 *      `BEGIN IMMEDIATE` does, so no other connection or process can interleave; PostgreSQL:
 *      `SELECT ... FOR UPDATE` on the touched ledger accounts, in id order),
 *   2. re-reads the touched accounts under that lock and checks the rules,
 *   3. inserts the journal entry and its postings and writes the new cached balances.
 *
 * Sign convention: a positive posting is money into the account, a negative one money out.
 * Deposit accounts (checking, savings, debit) never go below zero; a credit card's balance is
 * negative when money is owed and never below minus its credit limit; frozen accounts refuse
 * debits. System accounts (merchant settlement, external world, fees) are unconstrained.
 */
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { CURRENCIES } from '../../lib/money.js';
import type { TransactionKind } from '../../seeds/fixture.js';
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

/**
 * Reads ledger accounts under the write lock: on PostgreSQL locks their rows (`FOR UPDATE`, in
 * id order so two transactions never wait on each other in a cycle); on SQLite the transaction
 * already holds the database's single write lock.
 */
export async function lockAccounts(trx: Knex.Transaction, ids: readonly string[]): Promise<Map<string, LedgerAccountRow>> {
  const sorted = [...new Set(ids)].sort();
  if (sorted.length === 0) return new Map();
  const q = trx('ledger_accounts').select('*').whereIn('id', sorted).orderBy('id');
  if (!isSqlite(trx)) q.forUpdate();
  const rows = (await q) as Parameters<typeof toLedgerAccount>[0][];
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

/** Posts inside an open ledger transaction (see ledgerTransaction). */
async function postIn(trx: Knex.Transaction, entry: NewEntry): Promise<PostedEntry> {
  assertBalanced(entry);
  const accounts = await lockAccounts(
    trx,
    entry.postings.map((p) => p.accountId),
  );
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
  await trx('journal_entries').insert({ id: entry.id, kind: entry.kind, description: entry.description, posted_at: entry.postedAt });
  await trx('postings').insert(
    entry.postings.map((p) => ({
      entry_id: entry.id,
      account_id: p.accountId,
      amount_minor: p.amountMinor.toString(),
      currency: p.currency,
      posted_at: entry.postedAt,
      merchant_id: p.merchantId ?? null,
      counterparty_user_id: p.counterpartyUserId ?? null,
    })),
  );
  for (const [id, balance] of balances) {
    await trx('ledger_accounts').where({ id }).update({ balance_minor: balance.toString() });
  }
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

/**
 * Appends an event to the outbox inside the ledger transaction, so an event exists if and only
 * if its entry committed. Event ids must become visible in id order for the `events` feed: on
 * SQLite writers are serialized already; on PostgreSQL the table lock (held to commit) does it.
 */
export async function appendOutbox(trx: Knex.Transaction, type: OutboxEventType, payload: Record<string, unknown>, createdAt: string): Promise<void> {
  if (!isSqlite(trx)) await trx.raw('LOCK TABLE outbox_events IN EXCLUSIVE MODE');
  await trx('outbox_events').insert({ event_type: type, payload: JSON.stringify(payload), created_at: createdAt });
}
