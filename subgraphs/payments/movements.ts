/**
 * Money movement: transfers between users and purchases at merchants. Each runs as one ledger
 * transaction (see ledger.ts) that looks up the idempotency key, checks the business rules,
 * posts the journal entry, records the transfer or purchase, appends the outbox event and
 * stores the idempotency key, or refuses with user errors and writes nothing.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { formatMinor, parseMoney, toBigInt } from '../../lib/money.js';
import { toLedgerAccount, type LedgerAccountRow } from './data.js';
import { signalOutbox } from './outbox-signal.js';
import { appendOutbox, availableOf, ledgerTransaction, LedgerError, lockAccounts, postEntry } from './ledger.js';
import { DESCRIPTION_MAX_CHARS, IDEMPOTENCY_KEY_MAX_CHARS, IDEMPOTENCY_RETENTION_HOURS, NOTE_MAX_CHARS, TRANSFER_LIMITS } from './limits.js';

/** Stable codes of business failures, returned in `userErrors` (see docs/money.md). */
export type UserErrorCode =
  | 'INVALID_AMOUNT'
  | 'UNSUPPORTED_CURRENCY'
  | 'CURRENCY_MISMATCH'
  | 'INSUFFICIENT_FUNDS'
  | 'LIMIT_EXCEEDED'
  | 'RECIPIENT_NOT_FOUND'
  | 'SELF_TRANSFER'
  | 'ACCOUNT_NOT_FOUND'
  | 'ACCOUNT_FROZEN'
  | 'MERCHANT_NOT_FOUND'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INVALID_INPUT';

export interface UserError {
  code: UserErrorCode;
  /** Path to the offending input field from the mutation's arguments, e.g. ["input", "amount", "amount"]. */
  field: string[] | null;
  message: string;
}

export interface MoneyInput {
  amount: string;
  currency: string;
}

export interface SendTransferInput {
  fromAccountId: string;
  toHandle: string;
  amount: MoneyInput;
  note?: string | null;
  idempotencyKey: string;
}

export interface MakePurchaseInput {
  accountId: string;
  merchantId: string;
  amount: MoneyInput;
  description?: string | null;
  idempotencyKey: string;
  cardPresent?: boolean | null;
}

export interface MovementOptions {
  /** Clock, for tests. */
  now?: () => Date;
}

export type TransferResult = { transferId: string; userErrors: [] } | { transferId: null; userErrors: UserError[] };
export type PurchaseResult = { purchaseId: string; userErrors: [] } | { purchaseId: null; userErrors: UserError[] };

/** Thrown inside a ledger transaction to roll it back and answer with user errors. */
class Refusal extends Error {
  constructor(readonly errors: UserError[]) {
    super(errors.map((e) => e.code).join(', '));
  }
}

function refuse(code: UserErrorCode, field: string[] | null, message: string): never {
  throw new Refusal([{ code, field, message }]);
}

const chars = (s: string) => Array.from(s).length;

function checkKey(key: string, errors: UserError[]): void {
  const n = chars(key);
  if (n < 1 || n > IDEMPOTENCY_KEY_MAX_CHARS) {
    errors.push({ code: 'INVALID_INPUT', field: ['input', 'idempotencyKey'], message: `idempotencyKey must be 1 to ${IDEMPOTENCY_KEY_MAX_CHARS} characters.` });
  }
}

function checkAmount(amount: MoneyInput, errors: UserError[]): { minor: bigint; currency: string } | null {
  const parsed = parseMoney(amount);
  if (parsed.ok) return { minor: parsed.minor, currency: parsed.currency };
  const field = parsed.error.code === 'UNSUPPORTED_CURRENCY' ? ['input', 'amount', 'currency'] : ['input', 'amount', 'amount'];
  errors.push({ code: parsed.error.code, field, message: parsed.error.message });
  return null;
}

/** sha256 of the canonical input (fixed field order, parsed amount): what a key is bound to. */
export function requestHash(parts: readonly (string | boolean | null)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function isIdempotencyConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string; constraint?: string };
  const unique = e.code === '23505' || (e.code === 'SQLITE_CONSTRAINT' && /UNIQUE/.test(e.message ?? ''));
  return unique && /idempotency_keys/.test(`${e.message ?? ''} ${e.constraint ?? ''}`);
}

interface IdempotencyScope {
  userId: string;
  operation: 'sendTransfer' | 'makePurchase';
  key: string;
  hash: string;
}

/**
 * Runs `work` once per (user, operation, key): inside the serialized ledger transaction the key
 * is looked up first; a stored key with the same input hash returns the stored result (nothing
 * moves), with another hash IDEMPOTENCY_KEY_REUSED. A successful result is stored with the key in
 * the same transaction; refusals are not stored, so a failed request may be retried with its key.
 * The unique constraint is the backstop (PostgreSQL: two first requests racing): the loser
 * re-runs and finds the winner's result.
 */
async function idempotent<R extends Record<string, string>>(db: Knex, scope: IdempotencyScope, now: Date, work: (trx: Knex.Transaction) => Promise<R>): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await ledgerTransaction(db, async (trx) => {
        const existing = (await trx('idempotency_keys').where({ user_id: scope.userId, operation: scope.operation, idem_key: scope.key }).first()) as
          | { request_hash: string; result: string }
          | undefined;
        if (existing) {
          if (existing.request_hash !== scope.hash) {
            refuse('IDEMPOTENCY_KEY_REUSED', ['input', 'idempotencyKey'], `This idempotencyKey was already used for a different ${scope.operation} request; use a new key for a new request.`);
          }
          return JSON.parse(existing.result) as R;
        }
        const result = await work(trx);
        await trx('idempotency_keys').insert({
          user_id: scope.userId,
          operation: scope.operation,
          idem_key: scope.key,
          request_hash: scope.hash,
          result: JSON.stringify(result),
          created_at: now.toISOString(),
        });
        return result;
      });
      signalOutbox(db);
      return result;
    } catch (err) {
      if (attempt === 0 && isIdempotencyConflict(err)) continue;
      throw err;
    }
  }
}

function ledgerRefusal(err: LedgerError, field: string[]): Refusal {
  switch (err.code) {
    case 'ACCOUNT_FROZEN':
      return new Refusal([{ code: 'ACCOUNT_FROZEN', field, message: 'This account is frozen and cannot send money.' }]);
    case 'INSUFFICIENT_FUNDS':
      return new Refusal([{ code: 'INSUFFICIENT_FUNDS', field: ['input', 'amount'], message: 'Not enough available funds or credit for this amount.' }]);
    case 'CURRENCY_MISMATCH':
      return new Refusal([{ code: 'CURRENCY_MISMATCH', field: ['input', 'amount', 'currency'], message: 'The amount is not in the account currency.' }]);
    case 'ACCOUNT_NOT_FOUND':
      return new Refusal([{ code: 'ACCOUNT_NOT_FOUND', field, message: 'No such account.' }]);
    default:
      throw err;
  }
}

async function ownAccount(trx: Knex.Transaction, userId: string, accountId: string, field: string[]): Promise<LedgerAccountRow> {
  const raw = (await trx('ledger_accounts').where({ id: accountId }).first()) as Parameters<typeof toLedgerAccount>[0] | undefined;
  const row = raw ? toLedgerAccount(raw) : null;
  if (!row || row.ownerUserId !== userId) refuse('ACCOUNT_NOT_FOUND', field, `You have no account "${accountId.slice(0, 64)}".`);
  return row;
}

function formatLimit(minor: bigint, currency: string): string {
  return `${formatMinor(minor, currency)} ${currency}`;
}

function startOfUtcDay(now: Date): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
}

/** sendTransfer: from one of the caller's accounts to another user (by handle), same currency. */
export async function sendTransfer(db: Knex, userId: string, input: SendTransferInput, opts: MovementOptions = {}): Promise<TransferResult> {
  const errors: UserError[] = [];
  checkKey(input.idempotencyKey, errors);
  const note = input.note === undefined || input.note === null || input.note === '' ? null : input.note;
  if (note !== null && chars(note) > NOTE_MAX_CHARS) {
    errors.push({ code: 'INVALID_INPUT', field: ['input', 'note'], message: `note must be at most ${NOTE_MAX_CHARS} characters.` });
  }
  const amount = checkAmount(input.amount, errors);
  if (errors.length > 0 || !amount) return { transferId: null, userErrors: errors };

  const handle = input.toHandle.trim().replace(/^@/, '').toLowerCase();
  const now = (opts.now ?? (() => new Date()))();
  const postedAt = now.toISOString();
  const hash = requestHash(['sendTransfer', input.fromAccountId, handle, amount.minor.toString(), amount.currency, note]);
  try {
    const result = await idempotent(db, { userId, operation: 'sendTransfer', key: input.idempotencyKey, hash }, now, async (trx) => {
      const from = await ownAccount(trx, userId, input.fromAccountId, ['input', 'fromAccountId']);
      const party = (await trx('parties').whereRaw('lower(handle) = ?', [handle]).first()) as { user_id: string; handle: string } | undefined;
      if (!party) refuse('RECIPIENT_NOT_FOUND', ['input', 'toHandle'], `No user with the handle "${input.toHandle.slice(0, 64)}".`);
      if (party.user_id === userId) refuse('SELF_TRANSFER', ['input', 'toHandle'], 'You cannot send money to yourself; choose another recipient.');
      if (from.currency !== amount.currency) {
        refuse('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `Account ${from.id} holds ${from.currency}; the amount is in ${amount.currency}.`);
      }
      const toRaw = (await trx('ledger_accounts')
        .where({ owner_user_id: party.user_id, currency: amount.currency })
        .whereIn('kind', ['CHECKING', 'SAVINGS'])
        .orderBy([{ column: 'kind' }, { column: 'id' }])
        .first()) as Parameters<typeof toLedgerAccount>[0] | undefined;
      if (!toRaw) refuse('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `@${party.handle} has no ${amount.currency} account to receive into.`);

      // Current values, under the lock.
      const locked = await lockAccounts(trx, [from.id, toRaw.id]);
      const source = locked.get(from.id)!;
      if (source.frozen) refuse('ACCOUNT_FROZEN', ['input', 'fromAccountId'], 'This account is frozen and cannot send money.');
      const limits = TRANSFER_LIMITS[amount.currency];
      if (limits) {
        if (amount.minor > limits.perTransferMinor) {
          refuse('LIMIT_EXCEEDED', ['input', 'amount', 'amount'], `A single transfer can be at most ${formatLimit(limits.perTransferMinor, amount.currency)}.`);
        }
        const todayRows = (await trx('transfers')
          .select('amount_minor')
          .where({ from_user_id: userId, currency: amount.currency })
          .where('created_at', '>=', startOfUtcDay(now))) as { amount_minor: unknown }[];
        let sentToday = 0n;
        for (const r of todayRows) sentToday += toBigInt(r.amount_minor);
        if (sentToday + amount.minor > limits.dailyMinor) {
          refuse(
            'LIMIT_EXCEEDED',
            ['input', 'amount', 'amount'],
            `Daily transfer limit of ${formatLimit(limits.dailyMinor, amount.currency)} reached: ${formatLimit(limits.dailyMinor - sentToday, amount.currency)} left today.`,
          );
        }
      }
      if (availableOf(source) < amount.minor) refuse('INSUFFICIENT_FUNDS', ['input', 'amount'], 'Not enough available funds or credit for this amount.');

      const transferId = `trf_${randomUUID()}`;
      const entryId = `je_${randomUUID()}`;
      try {
        await postEntry(trx, {
          id: entryId,
          kind: 'TRANSFER',
          description: note ?? 'Transfer',
          postedAt,
          postings: [
            { accountId: from.id, amountMinor: -amount.minor, currency: amount.currency, counterpartyUserId: party.user_id },
            { accountId: toRaw.id, amountMinor: amount.minor, currency: amount.currency, counterpartyUserId: userId },
          ],
        });
      } catch (err) {
        if (err instanceof LedgerError) throw ledgerRefusal(err, ['input', 'fromAccountId']);
        throw err;
      }
      await trx('transfers').insert({
        id: transferId,
        entry_id: entryId,
        from_account_id: from.id,
        from_user_id: userId,
        to_account_id: toRaw.id,
        to_user_id: party.user_id,
        amount_minor: amount.minor.toString(),
        currency: amount.currency,
        note,
        status: 'POSTED',
        created_at: postedAt,
      });
      await appendOutbox(
        trx,
        'TRANSFER_POSTED',
        { transferId, fromAccountId: from.id, fromUserId: userId, toUserId: party.user_id, amountMinor: amount.minor.toString(), currency: amount.currency, postedAt },
        postedAt,
      );
      return { transferId };
    });
    return { transferId: result.transferId!, userErrors: [] };
  } catch (err) {
    if (err instanceof Refusal) return { transferId: null, userErrors: err.errors };
    throw err;
  }
}

/** makePurchase: from one of the caller's accounts or cards to a merchant's settlement account. */
export async function makePurchase(db: Knex, userId: string, input: MakePurchaseInput, opts: MovementOptions = {}): Promise<PurchaseResult> {
  const errors: UserError[] = [];
  checkKey(input.idempotencyKey, errors);
  const description = input.description === undefined || input.description === null || input.description === '' ? null : input.description;
  if (description !== null && chars(description) > DESCRIPTION_MAX_CHARS) {
    errors.push({ code: 'INVALID_INPUT', field: ['input', 'description'], message: `description must be at most ${DESCRIPTION_MAX_CHARS} characters.` });
  }
  const amount = checkAmount(input.amount, errors);
  if (errors.length > 0 || !amount) return { purchaseId: null, userErrors: errors };

  const cardPresent = input.cardPresent ?? true;
  const now = (opts.now ?? (() => new Date()))();
  const postedAt = now.toISOString();
  const hash = requestHash(['makePurchase', input.accountId, input.merchantId, amount.minor.toString(), amount.currency, description, cardPresent]);
  try {
    const result = await idempotent(db, { userId, operation: 'makePurchase', key: input.idempotencyKey, hash }, now, async (trx) => {
      const account = await ownAccount(trx, userId, input.accountId, ['input', 'accountId']);
      const settleRaw = (await trx('ledger_accounts').where({ merchant_id: input.merchantId, kind: 'MERCHANT' }).first()) as
        | (Parameters<typeof toLedgerAccount>[0] & { merchant_name: string | null; merchant_category: string | null; merchant_country: string | null; merchant_mcc: string | null })
        | undefined;
      if (!settleRaw) refuse('MERCHANT_NOT_FOUND', ['input', 'merchantId'], `No merchant "${input.merchantId.slice(0, 64)}" accepts payments.`);
      if (account.currency !== amount.currency) {
        refuse('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `Account ${account.id} holds ${account.currency}; the amount is in ${amount.currency}.`);
      }
      if (settleRaw.currency !== amount.currency) {
        refuse('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `This merchant settles in ${settleRaw.currency}; the amount is in ${amount.currency}.`);
      }
      const locked = await lockAccounts(trx, [account.id, settleRaw.id]);
      const source = locked.get(account.id)!;
      if (source.frozen) refuse('ACCOUNT_FROZEN', ['input', 'accountId'], 'This account or card is frozen and cannot be used for purchases.');
      if (availableOf(source) < amount.minor) refuse('INSUFFICIENT_FUNDS', ['input', 'amount'], 'Not enough available funds or credit for this amount.');

      const purchaseId = `pur_${randomUUID()}`;
      const entryId = `je_${randomUUID()}`;
      try {
        await postEntry(trx, {
          id: entryId,
          kind: 'PURCHASE',
          description: description ?? settleRaw.merchant_name ?? input.merchantId,
          postedAt,
          postings: [
            { accountId: account.id, amountMinor: -amount.minor, currency: amount.currency, merchantId: input.merchantId },
            { accountId: settleRaw.id, amountMinor: amount.minor, currency: amount.currency, merchantId: input.merchantId },
          ],
        });
      } catch (err) {
        if (err instanceof LedgerError) throw ledgerRefusal(err, ['input', 'accountId']);
        throw err;
      }
      await trx('purchases').insert({
        id: purchaseId,
        entry_id: entryId,
        account_id: account.id,
        user_id: userId,
        merchant_id: input.merchantId,
        amount_minor: amount.minor.toString(),
        currency: amount.currency,
        description,
        card_present: cardPresent,
        status: 'POSTED',
        created_at: postedAt,
      });
      const party = (await trx('parties').where({ user_id: userId }).first()) as { country: string } | undefined;
      await appendOutbox(
        trx,
        'PURCHASE_POSTED',
        {
          purchaseId,
          accountId: account.id,
          accountKind: account.kind,
          userId,
          userCountry: party?.country ?? null,
          merchantId: input.merchantId,
          merchantCategory: settleRaw.merchant_category,
          merchantCountry: settleRaw.merchant_country,
          mcc: settleRaw.merchant_mcc,
          amountMinor: amount.minor.toString(),
          currency: amount.currency,
          postedAt,
          cardPresent,
        },
        postedAt,
      );
      return { purchaseId };
    });
    return { purchaseId: result.purchaseId!, userErrors: [] };
  } catch (err) {
    if (err instanceof Refusal) return { purchaseId: null, userErrors: err.errors };
    throw err;
  }
}

/** Deletes idempotency keys older than the retention (at least 24 hours). Returns how many. */
export async function pruneIdempotencyKeys(db: Knex, now: Date = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - IDEMPOTENCY_RETENTION_HOURS * 3_600_000).toISOString();
  return db('idempotency_keys').where('created_at', '<', cutoff).delete();
}
