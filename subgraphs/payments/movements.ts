/**
 * Money movement: transfers between users and purchases at merchants. Each movement looks up its
 * idempotency key, checks the business rules against balances read under the ledger lock, posts
 * the journal entry, records the transfer or purchase, appends the outbox event and stores the
 * idempotency key, all in one ledger transaction (see ledger.ts), or refuses with user errors and
 * writes nothing.
 *
 * Group commit (batcher.ts, docs/money.md "Throughput"): movements that arrive while another
 * transaction is running are run together as one ledger transaction. Each is still checked on its
 * own, in arrival order, against the running in-memory balances, daily usage and idempotency keys
 * of the movements before it, so a refused movement writes nothing and does not affect the others;
 * the batch commits the successful ones' rows with multi-row statements.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { formatMinor, parseMoney, toBigInt } from '../../lib/money.js';
import { GroupCommit } from './batcher.js';
import { toLedgerAccount, type LedgerAccountRow } from './data.js';
import { signalOutbox } from './outbox-signal.js';
import { appendOutboxEvents, applyEntry, availableOf, ledgerTransaction, LedgerError, lockAccountRows, writeEntries, type NewEntry, type NewOutboxEvent, type RawAccountRow } from './ledger.js';
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

/** PostgreSQL deadlock / serialization failure: the transaction rolled back and may be re-run. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '40P01' || code === '40001';
}

type Operation = 'sendTransfer' | 'makePurchase';

/** A validated movement request (input rules passed), waiting for its ledger transaction. */
interface BaseRequest {
  userId: string;
  operation: Operation;
  key: string;
  /** requestHash of the canonical input. */
  hash: string;
  amount: { minor: bigint; currency: string };
  postedAt: string;
}
interface TransferRequest extends BaseRequest {
  operation: 'sendTransfer';
  fromAccountId: string;
  /** As sent (for messages). */
  toHandle: string;
  /** Normalized: trimmed, without a leading @, lower case. */
  handle: string;
  note: string | null;
}
interface PurchaseRequest extends BaseRequest {
  operation: 'makePurchase';
  accountId: string;
  merchantId: string;
  description: string | null;
  cardPresent: boolean;
}
type MovementRequest = TransferRequest | PurchaseRequest;

/** What a movement came to: the transfer or purchase id (new or stored), or refusal errors. */
type Outcome = { id: string; errors: null } | { id: null; errors: UserError[] };

const refusal = (code: UserErrorCode, field: string[] | null, message: string): Outcome => ({ id: null, errors: [{ code, field, message }] });

function ledgerRefusal(err: LedgerError, field: string[]): Outcome {
  switch (err.code) {
    case 'ACCOUNT_FROZEN':
      return refusal('ACCOUNT_FROZEN', field, 'This account is frozen and cannot send money.');
    case 'INSUFFICIENT_FUNDS':
      return refusal('INSUFFICIENT_FUNDS', ['input', 'amount'], 'Not enough available funds or credit for this amount.');
    case 'CURRENCY_MISMATCH':
      return refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], 'The amount is not in the account currency.');
    case 'ACCOUNT_NOT_FOUND':
      return refusal('ACCOUNT_NOT_FOUND', field, 'No such account.');
    default:
      throw err;
  }
}

function formatLimit(minor: bigint, currency: string): string {
  return `${formatMinor(minor, currency)} ${currency}`;
}

/** UTC calendar day of an ISO-8601 UTC timestamp: YYYY-MM-DD. */
const utcDay = (iso: string) => iso.slice(0, 10);

const scopeOf = (r: { userId: string; operation: string; key: string }) => `${r.userId}\u0000${r.operation}\u0000${r.key}`;
const usageKeyOf = (userId: string, currency: string, day: string) => `${userId}\u0000${currency}\u0000${day}`;
const resultId = (operation: Operation, stored: string): string => {
  const parsed = JSON.parse(stored) as { transferId?: string; purchaseId?: string };
  return (operation === 'sendTransfer' ? parsed.transferId : parsed.purchaseId)!;
};

interface Party {
  userId: string;
  handle: string;
  country: string;
  /** The party's deposit accounts (checking, savings): id, kind, currency. */
  deposits: { id: string; kind: string; currency: string }[];
}

/** Per-movement plan after the checks that do not depend on balances (null: refused). */
type Plan =
  | { refused: Outcome }
  | { refused: null; kind: 'transfer'; from: LedgerAccountRow; toAccountId: string; toUserId: string }
  | { refused: null; kind: 'purchase'; account: LedgerAccountRow; settle: RawAccountRow; country: string | null };

/** Stored idempotency keys of the requests: scope -> { hash, result }. One statement. */
async function storedKeys(trx: Knex.Transaction, reqs: readonly MovementRequest[]): Promise<Map<string, { hash: string; result: string }>> {
  const scopes = new Map<string, MovementRequest>();
  for (const r of reqs) scopes.set(scopeOf(r), r);
  const rows = (await trx('idempotency_keys')
    .select('user_id', 'operation', 'idem_key', 'request_hash', 'result')
    .where((w) => {
      for (const r of scopes.values()) w.orWhere((q) => q.where({ user_id: r.userId, operation: r.operation, idem_key: r.key }));
    })) as { user_id: string; operation: string; idem_key: string; request_hash: string; result: string }[];
  return new Map(rows.map((r) => [scopeOf({ userId: r.user_id, operation: r.operation, key: r.idem_key }), { hash: r.request_hash, result: r.result }]));
}

/** Recipients by normalized handle and purchasers by user id, with their deposit accounts. One statement. */
async function loadParties(trx: Knex.Transaction, handles: readonly string[], userIds: readonly string[]): Promise<{ byHandle: Map<string, Party>; byUser: Map<string, Party> }> {
  const byHandle = new Map<string, Party>();
  const byUser = new Map<string, Party>();
  if (handles.length === 0 && userIds.length === 0) return { byHandle, byUser };
  const rows = (await trx('parties as p')
    .leftJoin('ledger_accounts as a', (j) => j.on('a.owner_user_id', '=', 'p.user_id').andOnIn('a.kind', ['CHECKING', 'SAVINGS']))
    .select('p.user_id', 'p.handle', 'p.country', 'a.id as account_id', 'a.kind as account_kind', 'a.currency as account_currency')
    .where((w) => {
      if (handles.length > 0) w.whereRaw(`lower(p.handle) IN (${handles.map(() => '?').join(', ')})`, [...handles]);
      if (userIds.length > 0) w.orWhereIn('p.user_id', userIds);
    })) as { user_id: string; handle: string; country: string; account_id: string | null; account_kind: string | null; account_currency: string | null }[];
  for (const r of rows) {
    let party = byUser.get(r.user_id);
    if (!party) {
      party = { userId: r.user_id, handle: r.handle, country: r.country, deposits: [] };
      byUser.set(r.user_id, party);
      byHandle.set(r.handle.toLowerCase(), party);
    }
    if (r.account_id) party.deposits.push({ id: r.account_id, kind: r.account_kind!, currency: r.account_currency! });
  }
  return { byHandle, byUser };
}

/** The account a transfer in `currency` lands on: the first deposit account, checking before savings. */
function receivingAccount(party: Party, currency: string): string | null {
  const candidates = party.deposits.filter((d) => d.currency === currency).sort((a, b) => (a.kind === b.kind ? (a.id < b.id ? -1 : 1) : a.kind < b.kind ? -1 : 1));
  return candidates[0]?.id ?? null;
}

/**
 * The daily-usage counters of (sender, currency, day), read under the lock. PostgreSQL: the rows
 * are created if missing (ON CONFLICT DO NOTHING, in key order) and locked FOR UPDATE in key order,
 * so two processes sending for the same user (even from different accounts) serialize on them.
 * SQLite: the transaction holds the database write lock already.
 */
async function loadUsage(trx: Knex.Transaction, keys: readonly { userId: string; currency: string; day: string }[]): Promise<Map<string, bigint>> {
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

/**
 * Runs movements as ONE ledger transaction and returns each one's outcome, in order. Reads are
 * batched (idempotency keys, parties, locked accounts, daily usage: one statement each); every
 * movement is then checked alone, in arrival order, against the running in-memory state (balances
 * after the earlier movements of the batch, their daily usage and their idempotency keys), so it
 * succeeds or is refused exactly as if it had run alone at that point; the successful movements'
 * rows are written with multi-row statements. Throws (nothing committed) on a database error.
 */
async function runMovements(db: Knex, reqs: readonly MovementRequest[]): Promise<Outcome[]> {
  const { outcomes, events } = await ledgerTransaction(db, async (trx) => {
    const outcomes: Outcome[] = new Array<Outcome>(reqs.length);
    const stored = await storedKeys(trx, reqs);
    const live = reqs.filter((r) => !stored.has(scopeOf(r)));

    // Recipients (by handle) and purchasers (for the event's userCountry), with deposit accounts.
    const transfers = live.filter((r): r is TransferRequest => r.operation === 'sendTransfer');
    const purchases = live.filter((r): r is PurchaseRequest => r.operation === 'makePurchase');
    const parties = await loadParties(
      trx,
      [...new Set(transfers.map((t) => t.handle))],
      [...new Set(purchases.map((p) => p.userId))],
    );

    // Every touched account, locked (PostgreSQL) and read once: sources, recipients, settlement accounts.
    const lockIds: string[] = [];
    for (const t of transfers) {
      lockIds.push(t.fromAccountId);
      const party = parties.byHandle.get(t.handle);
      const to = party ? receivingAccount(party, t.amount.currency) : null;
      if (to) lockIds.push(to);
    }
    for (const p of purchases) lockIds.push(p.accountId);
    const rawRows = await lockAccountRows(trx, lockIds, [...new Set(purchases.map((p) => p.merchantId))]);
    const state = new Map<string, LedgerAccountRow>(rawRows.map((r) => [r.id, toLedgerAccount(r)]));
    const settlement = new Map(rawRows.filter((r) => r.kind === 'MERCHANT' && r.merchant_id).map((r) => [r.merchant_id!, r]));

    // Checks that do not depend on balances, in the documented order.
    const plans = new Map<MovementRequest, Plan>();
    for (const t of transfers) {
      const from = state.get(t.fromAccountId);
      const party = parties.byHandle.get(t.handle);
      const to = party ? receivingAccount(party, t.amount.currency) : null;
      let plan: Plan;
      if (!from || from.ownerUserId !== t.userId) plan = { refused: refusal('ACCOUNT_NOT_FOUND', ['input', 'fromAccountId'], `You have no account "${t.fromAccountId.slice(0, 64)}".`) };
      else if (!party) plan = { refused: refusal('RECIPIENT_NOT_FOUND', ['input', 'toHandle'], `No user with the handle "${t.toHandle.slice(0, 64)}".`) };
      else if (party.userId === t.userId) plan = { refused: refusal('SELF_TRANSFER', ['input', 'toHandle'], 'You cannot send money to yourself; choose another recipient.') };
      else if (from.currency !== t.amount.currency) {
        plan = { refused: refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `Account ${from.id} holds ${from.currency}; the amount is in ${t.amount.currency}.`) };
      } else if (!to) plan = { refused: refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `@${party.handle} has no ${t.amount.currency} account to receive into.`) };
      else plan = { refused: null, kind: 'transfer', from, toAccountId: to, toUserId: party.userId };
      plans.set(t, plan);
    }
    for (const p of purchases) {
      const account = state.get(p.accountId);
      const settle = settlement.get(p.merchantId);
      let plan: Plan;
      if (!account || account.ownerUserId !== p.userId) plan = { refused: refusal('ACCOUNT_NOT_FOUND', ['input', 'accountId'], `You have no account "${p.accountId.slice(0, 64)}".`) };
      else if (!settle) plan = { refused: refusal('MERCHANT_NOT_FOUND', ['input', 'merchantId'], `No merchant "${p.merchantId.slice(0, 64)}" accepts payments.`) };
      else if (account.currency !== p.amount.currency) {
        plan = { refused: refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `Account ${account.id} holds ${account.currency}; the amount is in ${p.amount.currency}.`) };
      } else if (settle.currency !== p.amount.currency) {
        plan = { refused: refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `This merchant settles in ${settle.currency}; the amount is in ${p.amount.currency}.`) };
      } else plan = { refused: null, kind: 'purchase', account, settle, country: parties.byUser.get(p.userId)?.country ?? null };
      plans.set(p, plan);
    }

    // Daily usage of the senders whose transfers got this far, under the lock.
    const usage = await loadUsage(
      trx,
      transfers.filter((t) => plans.get(t)!.refused === null).map((t) => ({ userId: t.userId, currency: t.amount.currency, day: utcDay(t.postedAt) })),
    );
    const usageTouched = new Set<string>();

    // Each movement in arrival order, against the running state.
    const batchKeys = new Map<string, { hash: string; result: string }>();
    const entries: NewEntry[] = [];
    const balances = new Map<string, bigint>();
    const transferRows: Record<string, unknown>[] = [];
    const purchaseRows: Record<string, unknown>[] = [];
    const keyRows: Record<string, unknown>[] = [];
    const events: NewOutboxEvent[] = [];

    reqs.forEach((r, i) => {
      const scope = scopeOf(r);
      const known = stored.get(scope) ?? batchKeys.get(scope);
      if (known) {
        outcomes[i] =
          known.hash === r.hash
            ? { id: resultId(r.operation, known.result), errors: null }
            : refusal('IDEMPOTENCY_KEY_REUSED', ['input', 'idempotencyKey'], `This idempotencyKey was already used for a different ${r.operation} request; use a new key for a new request.`);
        return;
      }
      const plan = plans.get(r)!;
      if (plan.refused) {
        outcomes[i] = plan.refused;
        return;
      }
      const { minor, currency } = r.amount;
      const sourceField = r.operation === 'sendTransfer' ? ['input', 'fromAccountId'] : ['input', 'accountId'];
      const sourceId = plan.kind === 'transfer' ? plan.from.id : plan.account.id;
      const source = state.get(sourceId)!;
      if (source.frozen) {
        outcomes[i] = refusal(
          'ACCOUNT_FROZEN',
          sourceField,
          plan.kind === 'transfer' ? 'This account is frozen and cannot send money.' : 'This account or card is frozen and cannot be used for purchases.',
        );
        return;
      }
      let usageKey: string | null = null;
      if (plan.kind === 'transfer') {
        usageKey = usageKeyOf(r.userId, currency, utcDay(r.postedAt));
        const limits = TRANSFER_LIMITS[currency];
        if (limits) {
          if (minor > limits.perTransferMinor) {
            outcomes[i] = refusal('LIMIT_EXCEEDED', ['input', 'amount', 'amount'], `A single transfer can be at most ${formatLimit(limits.perTransferMinor, currency)}.`);
            return;
          }
          const sentToday = usage.get(usageKey) ?? 0n;
          if (sentToday + minor > limits.dailyMinor) {
            outcomes[i] = refusal(
              'LIMIT_EXCEEDED',
              ['input', 'amount', 'amount'],
              `Daily transfer limit of ${formatLimit(limits.dailyMinor, currency)} reached: ${formatLimit(limits.dailyMinor - sentToday, currency)} left today.`,
            );
            return;
          }
        }
      }
      if (availableOf(source) < minor) {
        outcomes[i] = refusal('INSUFFICIENT_FUNDS', ['input', 'amount'], 'Not enough available funds or credit for this amount.');
        return;
      }

      const entryId = `je_${randomUUID()}`;
      let entry: NewEntry;
      let id: string;
      if (plan.kind === 'transfer') {
        const t = r as TransferRequest;
        id = `trf_${randomUUID()}`;
        entry = {
          id: entryId,
          kind: 'TRANSFER',
          description: t.note ?? 'Transfer',
          postedAt: t.postedAt,
          postings: [
            { accountId: sourceId, amountMinor: -minor, currency, counterpartyUserId: plan.toUserId },
            { accountId: plan.toAccountId, amountMinor: minor, currency, counterpartyUserId: t.userId },
          ],
        };
      } else {
        const p = r as PurchaseRequest;
        id = `pur_${randomUUID()}`;
        entry = {
          id: entryId,
          kind: 'PURCHASE',
          description: p.description ?? plan.settle.merchant_name ?? p.merchantId,
          postedAt: p.postedAt,
          postings: [
            { accountId: sourceId, amountMinor: -minor, currency, merchantId: p.merchantId },
            { accountId: plan.settle.id, amountMinor: minor, currency, merchantId: p.merchantId },
          ],
        };
      }
      let after: Map<string, bigint>;
      try {
        after = applyEntry(state, entry); // the ledger's own rules, on the running balances
      } catch (err) {
        if (err instanceof LedgerError) {
          outcomes[i] = ledgerRefusal(err, sourceField);
          return;
        }
        throw err;
      }

      // Accepted: update the running state and collect the rows.
      for (const [accountId, balance] of after) {
        state.set(accountId, { ...state.get(accountId)!, balanceMinor: balance });
        balances.set(accountId, balance);
      }
      entries.push(entry);
      const result = JSON.stringify(r.operation === 'sendTransfer' ? { transferId: id } : { purchaseId: id });
      batchKeys.set(scope, { hash: r.hash, result });
      keyRows.push({ user_id: r.userId, operation: r.operation, idem_key: r.key, request_hash: r.hash, result, created_at: r.postedAt });
      if (plan.kind === 'transfer') {
        const t = r as TransferRequest;
        usage.set(usageKey!, (usage.get(usageKey!) ?? 0n) + minor);
        usageTouched.add(usageKey!);
        transferRows.push({
          id,
          entry_id: entryId,
          from_account_id: sourceId,
          from_user_id: t.userId,
          to_account_id: plan.toAccountId,
          to_user_id: plan.toUserId,
          amount_minor: minor.toString(),
          currency,
          note: t.note,
          status: 'POSTED',
          created_at: t.postedAt,
        });
        events.push({
          type: 'TRANSFER_POSTED',
          payload: { transferId: id, fromAccountId: sourceId, fromUserId: t.userId, toUserId: plan.toUserId, amountMinor: minor.toString(), currency, postedAt: t.postedAt },
          createdAt: t.postedAt,
        });
      } else {
        const p = r as PurchaseRequest;
        purchaseRows.push({
          id,
          entry_id: entryId,
          account_id: sourceId,
          user_id: p.userId,
          merchant_id: p.merchantId,
          amount_minor: minor.toString(),
          currency,
          description: p.description,
          card_present: p.cardPresent,
          status: 'POSTED',
          created_at: p.postedAt,
        });
        events.push({
          type: 'PURCHASE_POSTED',
          payload: {
            purchaseId: id,
            accountId: sourceId,
            accountKind: plan.account.kind,
            userId: p.userId,
            userCountry: plan.country,
            merchantId: p.merchantId,
            merchantCategory: plan.settle.merchant_category ?? null,
            merchantCountry: plan.settle.merchant_country ?? null,
            mcc: plan.settle.merchant_mcc ?? null,
            amountMinor: minor.toString(),
            currency,
            postedAt: p.postedAt,
            cardPresent: p.cardPresent,
          },
          createdAt: p.postedAt,
        });
      }
      outcomes[i] = { id, errors: null };
    });

    // Writes of the accepted movements: multi-row statements, the outbox last (see appendOutboxEvents).
    if (entries.length > 0) {
      await writeEntries(trx, entries, balances);
      if (transferRows.length > 0) await trx('transfers').insert(transferRows);
      if (purchaseRows.length > 0) await trx('purchases').insert(purchaseRows);
      if (usageTouched.size > 0) {
        await trx('transfer_daily_usage')
          .insert(
            [...usageTouched].sort().map((k) => {
              const [userId, currency, day] = k.split('\u0000') as [string, string, string];
              return { user_id: userId, currency, day, sent_minor: usage.get(k)!.toString() };
            }),
          )
          .onConflict(['user_id', 'currency', 'day'])
          .merge(['sent_minor']);
      }
      await trx('idempotency_keys').insert(keyRows);
      await appendOutboxEvents(trx, events);
    }
    return { outcomes, events: events.length };
  });
  if (events > 0) signalOutbox(db);
  return outcomes;
}

/**
 * One movement in its own transaction. The unique key on idempotency_keys is the backstop when
 * two first requests with one key race across processes (PostgreSQL): the loser rolls back and
 * re-runs once, finding the winner's result. A PostgreSQL deadlock or serialization failure
 * (rolled back, nothing written) is re-run too.
 */
async function runAlone(db: Knex, req: MovementRequest): Promise<Outcome> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await runMovements(db, [req]))[0]!;
    } catch (err) {
      if ((attempt === 0 && isIdempotencyConflict(err)) || (attempt < 3 && isTransient(err))) continue;
      throw err;
    }
  }
}

/** Largest number of movements committed in one transaction. */
export const MAX_BATCH = 64;

const batchers = new WeakMap<Knex, GroupCommit<MovementRequest, Outcome>>();

/** Queues a movement on the database's group-commit batcher (one per database handle). */
function submit(db: Knex, req: MovementRequest): Promise<Outcome> {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = new GroupCommit<MovementRequest, Outcome>(
      (items) => runMovements(db, items),
      (item) => runAlone(db, item),
      MAX_BATCH,
    );
    batchers.set(db, batcher);
  }
  return batcher.submit(req);
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
  const hash = requestHash(['sendTransfer', input.fromAccountId, handle, amount.minor.toString(), amount.currency, note]);
  const outcome = await submit(db, {
    operation: 'sendTransfer',
    userId,
    key: input.idempotencyKey,
    hash,
    amount,
    postedAt: now.toISOString(),
    fromAccountId: input.fromAccountId,
    toHandle: input.toHandle,
    handle,
    note,
  });
  return outcome.errors ? { transferId: null, userErrors: outcome.errors } : { transferId: outcome.id, userErrors: [] };
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
  const hash = requestHash(['makePurchase', input.accountId, input.merchantId, amount.minor.toString(), amount.currency, description, cardPresent]);
  const outcome = await submit(db, {
    operation: 'makePurchase',
    userId,
    key: input.idempotencyKey,
    hash,
    amount,
    postedAt: now.toISOString(),
    accountId: input.accountId,
    merchantId: input.merchantId,
    description,
    cardPresent,
  });
  return outcome.errors ? { purchaseId: null, userErrors: outcome.errors } : { purchaseId: outcome.id, userErrors: [] };
}

/** Deletes idempotency keys older than the retention (at least 24 hours). Returns how many. */
export async function pruneIdempotencyKeys(db: Knex, now: Date = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - IDEMPOTENCY_RETENTION_HOURS * 3_600_000).toISOString();
  return db('idempotency_keys').where('created_at', '<', cutoff).delete();
}
