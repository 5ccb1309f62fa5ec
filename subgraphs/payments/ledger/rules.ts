/**
 * The ledger's balance rules, and the only place they are decided: which account kinds hold the
 * customer's own money and which borrow, how low each may go, what can be spent, which accounts a
 * transfer lands on, and whether an entry may post against the accounts' current state. Pure
 * functions over typed rows: no SQL, no I/O. Amounts are bigint minor units.
 *
 * Sign convention: a positive posting is money into the account, a negative one money out.
 * Deposit accounts (checking, savings, debit) never go below zero; a credit card's balance is
 * negative when money is owed and never below minus its credit limit; frozen accounts refuse
 * debits (credits are fine). System accounts (merchant settlement, external world, fees) are
 * unconstrained.
 */
import { CURRENCIES } from '../../../lib/money.js';
import type { LedgerAccountRow, TransactionKind } from '../data.js';

export type LedgerErrorCode = 'UNBALANCED_ENTRY' | 'INVALID_ENTRY' | 'ACCOUNT_NOT_FOUND' | 'CURRENCY_MISMATCH' | 'ACCOUNT_FROZEN' | 'INSUFFICIENT_FUNDS';

/** Why the ledger refused an entry; nothing of it was written. */
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

/** Account kinds that hold the customer's own money: never below zero. */
const DEPOSIT_KINDS: ReadonlySet<string> = new Set(['CHECKING', 'SAVINGS', 'DEBIT_CARD']);
/** Account kinds that borrow: never owe more than the credit limit. */
const CREDIT_KINDS: ReadonlySet<string> = new Set(['CREDIT_CARD']);
/**
 * Kinds a transfer from another user lands on, in order of preference: deposit accounts that are
 * not cards (a debit card spends from its account; it is not where people send money).
 */
export const RECEIVING_KINDS: readonly string[] = ['CHECKING', 'SAVINGS'];
/** The kind of a merchant's settlement account (the other side of a purchase). */
export const SETTLEMENT_KIND = 'MERCHANT';

/** The lowest balance an account may reach, or null when it is unconstrained. */
export function floorOf(account: LedgerAccountRow): bigint | null {
  if (DEPOSIT_KINDS.has(account.kind)) return 0n;
  if (CREDIT_KINDS.has(account.kind)) return -(account.creditLimitMinor ?? 0n);
  return null;
}

/** What can be spent now: deposit balance, or the card's unused credit. */
function availableOf(account: LedgerAccountRow): bigint {
  const floor = floorOf(account);
  return floor === null ? account.balanceMinor : account.balanceMinor - floor;
}

/** What the account holder sees: what can be spent, and the balance (a card shows what is owed). */
export function balanceView(account: LedgerAccountRow): { availableMinor: bigint; currentMinor: bigint } {
  const currentMinor = CREDIT_KINDS.has(account.kind) ? -account.balanceMinor : account.balanceMinor;
  return { availableMinor: availableOf(account), currentMinor };
}

/**
 * The account a transfer in `currency` lands on among `accounts` (the recipient's): the first one
 * of a receiving kind in that currency, by kind preference, then id. Null when there is none.
 */
export function receivingAccountOf(accounts: Iterable<Pick<LedgerAccountRow, 'id' | 'kind' | 'currency'>>, currency: string): string | null {
  const rank = (kind: string) => RECEIVING_KINDS.indexOf(kind);
  let best: Pick<LedgerAccountRow, 'id' | 'kind' | 'currency'> | null = null;
  for (const a of accounts) {
    if (a.currency !== currency || rank(a.kind) < 0) continue;
    if (!best || rank(a.kind) < rank(best.kind) || (a.kind === best.kind && a.id < best.id)) best = a;
  }
  return best?.id ?? null;
}

/** Throws unless the postings are well-formed and add up to zero in every currency. */
function assertBalanced(entry: NewEntry): void {
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
 * after it. Throws a LedgerError (and changes nothing) when a rule is broken. The checks run in a
 * fixed order (well-formed and balanced, accounts exist in the currency, then per debited
 * account: frozen before funds), so the first broken rule is always the one reported.
 */
export function applyEntry(accounts: ReadonlyMap<string, LedgerAccountRow>, entry: NewEntry): Map<string, bigint> {
  assertBalanced(entry);
  const deltas = new Map<string, bigint>();
  for (const p of entry.postings) {
    const account = accounts.get(p.accountId);
    if (!account) throw new LedgerError('ACCOUNT_NOT_FOUND', `no ledger account ${p.accountId}`, p.accountId);
    if (account.currency !== p.currency)
      throw new LedgerError('CURRENCY_MISMATCH', `account ${p.accountId} holds ${account.currency}, not ${p.currency}`, p.accountId);
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
