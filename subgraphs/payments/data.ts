/**
 * The graph's read model of the payments database (loaders.ts): ledger accounts, postings,
 * transfers and purchases as plain typed rows, read outside any ledger transaction. Read-only:
 * every write goes through the ledger (ledger/) or money movement (movements/).
 */
import type { Knex } from 'knex';
import { toBigInt } from '../../lib/money.js';
import type { CursorPosition } from '../../lib/cursor.js';

/** Kinds of journal entries (the schema's TransactionKind). */
export type TransactionKind = 'TRANSFER' | 'PURCHASE' | 'DEPOSIT' | 'REFUND' | 'FEE';

export interface LedgerAccountRow {
  id: string;
  ownerUserId: string | null;
  kind: string;
  currency: string;
  creditLimitMinor: bigint | null;
  frozen: boolean;
  balanceMinor: bigint;
  merchantId: string | null;
}

export interface PostingRow {
  id: number;
  entryId: string;
  accountId: string;
  amountMinor: bigint;
  currency: string;
  postedAt: string;
  merchantId: string | null;
  counterpartyUserId: string | null;
  kind: TransactionKind;
  description: string;
}

interface RawLedgerAccount {
  id: string;
  owner_user_id: string | null;
  kind: string;
  currency: string;
  credit_limit_minor: unknown;
  frozen: unknown;
  balance_minor: unknown;
  merchant_id: string | null;
}

export function toLedgerAccount(r: RawLedgerAccount): LedgerAccountRow {
  return {
    id: r.id,
    ownerUserId: r.owner_user_id,
    kind: r.kind,
    currency: r.currency,
    creditLimitMinor: r.credit_limit_minor === null || r.credit_limit_minor === undefined ? null : toBigInt(r.credit_limit_minor),
    frozen: r.frozen === true || r.frozen === 1,
    balanceMinor: toBigInt(r.balance_minor),
    merchantId: r.merchant_id,
  };
}

interface RawPosting {
  id: number;
  entry_id: string;
  account_id: string;
  amount_minor: unknown;
  currency: string;
  posted_at: string;
  merchant_id: string | null;
  counterparty_user_id: string | null;
  kind: TransactionKind;
  description: string;
}

function toPosting(r: RawPosting): PostingRow {
  return {
    id: Number(r.id),
    entryId: r.entry_id,
    accountId: r.account_id,
    amountMinor: toBigInt(r.amount_minor),
    currency: r.currency,
    postedAt: r.posted_at,
    merchantId: r.merchant_id,
    counterpartyUserId: r.counterparty_user_id,
    kind: r.kind,
    description: r.description,
  };
}

const postingColumns = [
  'p.id',
  'p.entry_id',
  'p.account_id',
  'p.amount_minor',
  'p.currency',
  'p.posted_at',
  'p.merchant_id',
  'p.counterparty_user_id',
  'e.kind',
  'e.description',
];

export async function ledgerAccountsByIds(db: Knex, ids: readonly string[]): Promise<LedgerAccountRow[]> {
  const rows = (await db('ledger_accounts').select('*').whereIn('id', ids)) as RawLedgerAccount[];
  return rows.map(toLedgerAccount);
}

/**
 * The newest `limit` postings of each of many accounts, after an optional cursor: one statement
 * however many accounts, one arm per account (`UNION ALL` of `ORDER BY posted_at DESC, id DESC
 * LIMIT n` subqueries), so each arm walks the (account_id, posted_at, id) index backwards from
 * its newest posting and stops after `limit`: the cost of a page does not grow with the account's
 * history (docs/performance.md, "Cost curves"; a window function over all of an account's
 * postings did, about 40 times slower at 100,000 postings than at 100).
 */
export async function latestPostings(db: Knex, accountIds: readonly string[], limit: number, after: CursorPosition | null): Promise<PostingRow[]> {
  const ids = [...new Set(accountIds)];
  if (ids.length === 0) return [];
  const arm = (id: string, i: number) => {
    const q = db.from('postings as p').join('journal_entries as e', 'e.id', 'p.entry_id').select(postingColumns).where('p.account_id', id);
    if (after) {
      q.where((w) => w.where('p.posted_at', '<', after.at).orWhere((w2) => w2.where('p.posted_at', '=', after.at).andWhere('p.id', '<', after.id)));
    }
    q.orderBy([
      { column: 'p.posted_at', order: 'desc' },
      { column: 'p.id', order: 'desc' },
    ]).limit(limit);
    return db.select('*').from(q.as(`t${i}`));
  };
  const [first, ...rest] = ids.map(arm);
  const rows = (await (rest.length > 0 ? first!.unionAll(rest) : first!)) as RawPosting[];
  const postings = rows.map(toPosting);
  // Per account, newest first (a UNION ALL keeps no order of its own).
  return postings.sort((a, b) =>
    a.accountId !== b.accountId
      ? a.accountId < b.accountId
        ? -1
        : 1
      : a.postedAt !== b.postedAt
        ? a.postedAt < b.postedAt
          ? 1
          : -1
        : Number(b.id) - Number(a.id),
  );
}

/** How many postings each account has: the counter kept with its balance (ledger/store.ts writeEntries), not a COUNT over its history. */
export async function postingCounts(db: Knex, accountIds: readonly string[]): Promise<Map<string, number>> {
  const rows = (await db('ledger_accounts').select('id', 'posting_count').whereIn('id', accountIds)) as { id: string; posting_count: unknown }[];
  return new Map(rows.map((r) => [r.id, Number(r.posting_count)]));
}

export interface TransferRow {
  id: string;
  entryId: string;
  fromAccountId: string;
  fromUserId: string;
  toAccountId: string;
  toUserId: string;
  amountMinor: bigint;
  currency: string;
  note: string | null;
  status: string;
  createdAt: string;
}

export interface PurchaseRow {
  id: string;
  entryId: string;
  accountId: string;
  userId: string;
  merchantId: string;
  amountMinor: bigint;
  currency: string;
  description: string | null;
  cardPresent: boolean;
  status: string;
  createdAt: string;
}

export async function transfersByIds(db: Knex, ids: readonly string[]): Promise<TransferRow[]> {
  const rows = (await db('transfers').select('*').whereIn('id', ids)) as Record<string, unknown>[];
  return rows.map((r) => ({
    id: r.id as string,
    entryId: r.entry_id as string,
    fromAccountId: r.from_account_id as string,
    fromUserId: r.from_user_id as string,
    toAccountId: r.to_account_id as string,
    toUserId: r.to_user_id as string,
    amountMinor: toBigInt(r.amount_minor),
    currency: r.currency as string,
    note: (r.note as string | null) ?? null,
    status: r.status as string,
    createdAt: r.created_at as string,
  }));
}

export async function purchasesByIds(db: Knex, ids: readonly string[]): Promise<PurchaseRow[]> {
  const rows = (await db('purchases').select('*').whereIn('id', ids)) as Record<string, unknown>[];
  return rows.map((r) => ({
    id: r.id as string,
    entryId: r.entry_id as string,
    accountId: r.account_id as string,
    userId: r.user_id as string,
    merchantId: r.merchant_id as string,
    amountMinor: toBigInt(r.amount_minor),
    currency: r.currency as string,
    description: (r.description as string | null) ?? null,
    cardPresent: r.card_present === true || r.card_present === 1,
    status: r.status as string,
    createdAt: r.created_at as string,
  }));
}
