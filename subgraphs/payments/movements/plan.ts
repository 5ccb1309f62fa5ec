/**
 * The batch plan of money movement (ledger/index.ts BatchPlan): what a batch of validated requests
 * comes to, decided inside one ledger transaction. Each request gets exactly the outcome it would
 * have had running alone at its place in the queue: it is checked against the state the requests
 * before it left (balances, daily usage, idempotency keys), and a refused request writes nothing
 * and changes nothing for the others. Business failures are outcomes (user errors), never throws.
 *
 * The steps, in order (docs/money.md, "Error codes" for the order of the checks):
 *   1. idempotency   stored keys of the batch (one statement): a known key answers from storage;
 *   2. parties       recipients by handle, purchasers by id (one statement);
 *   3. accounts      sources, recipients' receiving accounts, merchants' settlement accounts,
 *                    read and locked by the ledger (one statement);
 *   4. plans         the checks that do not depend on balances (ownership, recipient, currency);
 *   5. daily usage   the senders' counters, under the lock (one or two statements);
 *   6. decisions     each request in arrival order: replay, refusal, or booking (the ledger's
 *                    verdict on the entry, the daily limit in between), against the running state;
 *   7. records       the accepted requests' rows, written by the ledger after their entries.
 */
import { formatMinor } from '../../../lib/money.js';
import type { LedgerBatch, LedgerError, PlannedBatch } from '../ledger/index.js';
import { TRANSFER_LIMITS } from '../limits.js';
import { purchaseBooking, transferBooking, type Booking, type PurchasePlan, type TransferPlan } from './bookings.js';
import { loadParties, loadUsage, noRecords, scopeOf, storedKeys, usageKeyOf, writeRecords, type MovementRecords, type Party, type StoredKey } from './store.js';
import type { MovementRequest, Operation, Outcome, PurchaseRequest, TransferRequest, UserErrorCode } from './types.js';

type Plan = { refused: Outcome } | ({ refused: null } & (TransferPlan | PurchasePlan));

interface Parties {
  byHandle: Map<string, Party>;
  byUser: Map<string, Party>;
}

const refusal = (code: UserErrorCode, field: string[] | null, message: string): Outcome => ({ id: null, errors: [{ code, field, message }] });

const isTransfer = (r: MovementRequest): r is TransferRequest => r.operation === 'sendTransfer';
const isPurchase = (r: MovementRequest): r is PurchaseRequest => r.operation === 'makePurchase';

/** UTC calendar day of an ISO-8601 UTC timestamp: YYYY-MM-DD. */
const utcDay = (iso: string) => iso.slice(0, 10);

function formatLimit(minor: bigint, currency: string): string {
  return `${formatMinor(minor, currency)} ${currency}`;
}

const resultId = (operation: Operation, stored: string): string => {
  const parsed = JSON.parse(stored) as { transferId?: string; purchaseId?: string };
  return (operation === 'sendTransfer' ? parsed.transferId : parsed.purchaseId)!;
};

/** Step 4 for a transfer: source, recipient, self, currencies, receiving account. */
function planTransfer(batch: LedgerBatch, t: TransferRequest, parties: Parties): Plan {
  const from = batch.account(t.fromAccountId);
  const party = parties.byHandle.get(t.handle);
  const to = party ? batch.receivingAccount(party.userId, t.amount.currency) : null;
  if (!from || from.ownerUserId !== t.userId)
    return { refused: refusal('ACCOUNT_NOT_FOUND', ['input', 'fromAccountId'], `You have no account "${t.fromAccountId.slice(0, 64)}".`) };
  if (!party) return { refused: refusal('RECIPIENT_NOT_FOUND', ['input', 'toHandle'], `No user with the handle "${t.toHandle.slice(0, 64)}".`) };
  if (party.userId === t.userId)
    return { refused: refusal('SELF_TRANSFER', ['input', 'toHandle'], 'You cannot send money to yourself; choose another recipient.') };
  if (from.currency !== t.amount.currency) {
    return {
      refused: refusal(
        'CURRENCY_MISMATCH',
        ['input', 'amount', 'currency'],
        `Account ${from.id} holds ${from.currency}; the amount is in ${t.amount.currency}.`,
      ),
    };
  }
  if (!to)
    return { refused: refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], `@${party.handle} has no ${t.amount.currency} account to receive into.`) };
  return { refused: null, kind: 'transfer', fromAccountId: from.id, toAccountId: to, toUserId: party.userId };
}

/** Step 4 for a purchase: source, merchant, currencies. */
function planPurchase(batch: LedgerBatch, p: PurchaseRequest, parties: Parties): Plan {
  const account = batch.account(p.accountId);
  const settle = batch.settlementAccount(p.merchantId);
  if (!account || account.ownerUserId !== p.userId)
    return { refused: refusal('ACCOUNT_NOT_FOUND', ['input', 'accountId'], `You have no account "${p.accountId.slice(0, 64)}".`) };
  if (!settle) return { refused: refusal('MERCHANT_NOT_FOUND', ['input', 'merchantId'], `No merchant "${p.merchantId.slice(0, 64)}" accepts payments.`) };
  if (account.currency !== p.amount.currency) {
    return {
      refused: refusal(
        'CURRENCY_MISMATCH',
        ['input', 'amount', 'currency'],
        `Account ${account.id} holds ${account.currency}; the amount is in ${p.amount.currency}.`,
      ),
    };
  }
  if (settle.currency !== p.amount.currency) {
    return {
      refused: refusal(
        'CURRENCY_MISMATCH',
        ['input', 'amount', 'currency'],
        `This merchant settles in ${settle.currency}; the amount is in ${p.amount.currency}.`,
      ),
    };
  }
  return { refused: null, kind: 'purchase', accountId: account.id, accountKind: account.kind, settle, country: parties.byUser.get(p.userId)?.country ?? null };
}

/** The ledger's refusal of a booking, as the user error of the movement. */
function ledgerRefusal(err: LedgerError, r: MovementRequest): Outcome {
  const sourceField = r.operation === 'sendTransfer' ? ['input', 'fromAccountId'] : ['input', 'accountId'];
  switch (err.code) {
    case 'ACCOUNT_FROZEN':
      return refusal(
        'ACCOUNT_FROZEN',
        sourceField,
        r.operation === 'sendTransfer' ? 'This account is frozen and cannot send money.' : 'This account or card is frozen and cannot be used for purchases.',
      );
    case 'INSUFFICIENT_FUNDS':
      return refusal('INSUFFICIENT_FUNDS', ['input', 'amount'], 'Not enough available funds or credit for this amount.');
    case 'CURRENCY_MISMATCH':
      return refusal('CURRENCY_MISMATCH', ['input', 'amount', 'currency'], 'The amount is not in the account currency.');
    case 'ACCOUNT_NOT_FOUND':
      return refusal('ACCOUNT_NOT_FOUND', sourceField, 'No such account.');
    default:
      // A malformed entry is a bug in the bookings, not the user's doing: fail the movement.
      throw err;
  }
}

/** Step 6: the running state of one batch's decisions, and the records of the accepted requests. */
class Decisions {
  /** Keys of the requests accepted so far in this batch: a repeat inside the batch is a replay. */
  private readonly batchKeys = new Map<string, StoredKey>();
  readonly records: MovementRecords = noRecords();

  constructor(
    private readonly batch: LedgerBatch,
    private readonly stored: ReadonlyMap<string, StoredKey>,
    private readonly plans: ReadonlyMap<MovementRequest, Plan>,
    /** Daily usage read under the lock, moved by the transfers accepted so far. */
    private readonly usage: Map<string, bigint>,
  ) {}

  decide(r: MovementRequest): Outcome {
    const scope = scopeOf(r);
    const known = this.stored.get(scope) ?? this.batchKeys.get(scope);
    if (known) return this.replay(r, known);
    const plan = this.plans.get(r)!;
    if (plan.refused) return plan.refused;
    // A request's plan has its kind (step 4), so the casts below only restate it.
    const booking = plan.kind === 'transfer' ? transferBooking(r as TransferRequest, plan) : purchaseBooking(r as PurchaseRequest, plan);
    // The ledger decides whether the source may pay. The documented order of the codes (ACCOUNT_FROZEN,
    // LIMIT_EXCEEDED, INSUFFICIENT_FUNDS) puts the daily limit between its frozen and funds verdicts.
    const verdict = this.batch.check(booking.entry);
    if (verdict?.code === 'ACCOUNT_FROZEN') return ledgerRefusal(verdict, r);
    if (plan.kind === 'transfer') {
      const overLimit = this.dailyLimitRefusal(r as TransferRequest);
      if (overLimit) return overLimit;
    }
    if (verdict) return ledgerRefusal(verdict, r);
    this.accept(r, booking);
    return { id: booking.id, errors: null };
  }

  /** A key seen before: the same input gets the stored result, another input a refusal. */
  private replay(r: MovementRequest, known: StoredKey): Outcome {
    return known.hash === r.hash
      ? { id: resultId(r.operation, known.result), errors: null }
      : refusal(
          'IDEMPOTENCY_KEY_REUSED',
          ['input', 'idempotencyKey'],
          `This idempotencyKey was already used for a different ${r.operation} request; use a new key for a new request.`,
        );
  }

  /** The per-transfer cap and the sender's daily limit (limits.ts), or null when within both. */
  private dailyLimitRefusal(t: TransferRequest): Outcome | null {
    const { minor, currency } = t.amount;
    const limits = TRANSFER_LIMITS[currency];
    if (!limits) return null;
    if (minor > limits.perTransferMinor) {
      return refusal('LIMIT_EXCEEDED', ['input', 'amount', 'amount'], `A single transfer can be at most ${formatLimit(limits.perTransferMinor, currency)}.`);
    }
    const sentToday = this.usage.get(usageKeyOf(t.userId, currency, utcDay(t.postedAt))) ?? 0n;
    if (sentToday + minor > limits.dailyMinor) {
      return refusal(
        'LIMIT_EXCEEDED',
        ['input', 'amount', 'amount'],
        `Daily transfer limit of ${formatLimit(limits.dailyMinor, currency)} reached: ${formatLimit(limits.dailyMinor - sentToday, currency)} left today.`,
      );
    }
    return null;
  }

  /** Posts the booking to the ledger and collects its rows: the key, the record, the daily usage. */
  private accept(r: MovementRequest, booking: Booking): void {
    this.batch.post(booking.entry, [booking.event]);
    const result = JSON.stringify(r.operation === 'sendTransfer' ? { transferId: booking.id } : { purchaseId: booking.id });
    this.batchKeys.set(scopeOf(r), { hash: r.hash, result });
    this.records.keys.push({ user_id: r.userId, operation: r.operation, idem_key: r.key, request_hash: r.hash, result, created_at: r.postedAt });
    if (r.operation === 'sendTransfer') {
      const key = usageKeyOf(r.userId, r.amount.currency, utcDay(r.postedAt));
      const total = (this.usage.get(key) ?? 0n) + r.amount.minor;
      this.usage.set(key, total);
      this.records.usage.set(key, total);
      this.records.transfers.push(booking.row);
    } else {
      this.records.purchases.push(booking.row);
    }
  }
}

/** Decides a batch of movements in one ledger transaction (the steps in the module comment). */
export async function planMovements(batch: LedgerBatch, reqs: readonly MovementRequest[]): Promise<PlannedBatch<Outcome>> {
  // 1. Requests whose key is stored are answered from storage; the rest are live.
  const stored = await storedKeys(batch.trx, reqs);
  const live = reqs.filter((r) => !stored.has(scopeOf(r)));
  const transfers = live.filter(isTransfer);
  const purchases = live.filter(isPurchase);

  // 2. Recipients (by handle) and purchasers (for the event's userCountry).
  const parties = await loadParties(batch.trx, [...new Set(transfers.map((t) => t.handle))], [...new Set(purchases.map((p) => p.userId))]);

  // 3. Every touched account, read once under the ledger's lock.
  await batch.lock({
    accountIds: [...transfers.map((t) => t.fromAccountId), ...purchases.map((p) => p.accountId)],
    merchantIds: [...new Set(purchases.map((p) => p.merchantId))],
    recipients: {
      userIds: transfers.flatMap((t) => parties.byHandle.get(t.handle)?.userId ?? []),
      currencies: [...new Set(transfers.map((t) => t.amount.currency))],
    },
  });

  // 4. The checks that do not depend on balances.
  const plans = new Map<MovementRequest, Plan>(live.map((r) => [r, isTransfer(r) ? planTransfer(batch, r, parties) : planPurchase(batch, r, parties)]));

  // 5. Daily usage of the senders whose transfers got this far, under the lock.
  const usage = await loadUsage(
    batch.trx,
    transfers.filter((t) => plans.get(t)!.refused === null).map((t) => ({ userId: t.userId, currency: t.amount.currency, day: utcDay(t.postedAt) })),
  );

  // 6. Each request in arrival order, against the running state.
  const decisions = new Decisions(batch, stored, plans, usage);
  const outcomes = reqs.map((r) => decisions.decide(r));

  // 7. The accepted requests' rows, written after their journal entries.
  return { outcomes, records: (trx) => writeRecords(trx, decisions.records) };
}
