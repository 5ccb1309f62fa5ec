/**
 * Money movement of one payments service: transfers between users and purchases at merchants.
 * A movement checks its input (input.ts), then queues on the ledger's group commit with the batch
 * plan (plan.ts); it either books its journal entry, business record, idempotency key, daily usage
 * and outbox event in one ledger transaction, or is refused with user errors and writes nothing.
 * Movements depend on the ledger, never the other way round; balance rules are the ledger's.
 */
import type { Knex } from 'knex';
import { currentTraceparent } from '../../../lib/tracing.js';
import type { Ledger } from '../ledger/index.js';
import { purchaseRequest, transferRequest } from './input.js';
import { planMovements } from './plan.js';
import { isIdempotencyConflict, pruneIdempotencyKeys } from './store.js';
import type { MakePurchaseInput, MovementRequest, Outcome, PurchaseResult, SendTransferInput, TransferResult } from './types.js';

export type { MakePurchaseInput, PurchaseResult, SendTransferInput, TransferResult, UserError } from './types.js';

export interface Movements {
  /** sendTransfer: from one of the caller's accounts to another user (by handle), same currency. */
  sendTransfer(userId: string, input: SendTransferInput): Promise<TransferResult>;
  /** makePurchase: from one of the caller's accounts or cards to a merchant's settlement account. */
  makePurchase(userId: string, input: MakePurchaseInput): Promise<PurchaseResult>;
  /** Deletes idempotency keys older than the retention (limits.ts). Returns how many. */
  pruneIdempotencyKeys(now?: Date): Promise<number>;
}

/** `clock`: when a movement happens (posting time, the daily limit's UTC day); tests pin it. */
export function createMovements({ db, ledger, clock = () => new Date() }: { db: Knex; ledger: Ledger; clock?: () => Date }): Movements {
  // The unique key on idempotency_keys is the backstop when two first requests with one key race
  // across processes (PostgreSQL): the loser rolls back and re-runs once, finding the winner's result.
  const submit: (req: MovementRequest) => Promise<Outcome> = ledger.groupCommit(planMovements, { retryOnceOn: isIdempotencyConflict });

  return {
    async sendTransfer(userId, input) {
      const valid = transferRequest(userId, input, clock());
      if (valid.errors) return { transferId: null, userErrors: valid.errors };
      // The trace is captured here, in the caller's request: a group commit runs in the context of whichever request started the batch.
      const outcome = await submit({ ...valid.request, traceparent: currentTraceparent() });
      return outcome.errors ? { transferId: null, userErrors: outcome.errors } : { transferId: outcome.id, userErrors: [] };
    },
    async makePurchase(userId, input) {
      const valid = purchaseRequest(userId, input, clock());
      if (valid.errors) return { purchaseId: null, userErrors: valid.errors };
      const outcome = await submit({ ...valid.request, traceparent: currentTraceparent() });
      return outcome.errors ? { purchaseId: null, userErrors: outcome.errors } : { purchaseId: outcome.id, userErrors: [] };
    },
    pruneIdempotencyKeys: (now = clock()) => pruneIdempotencyKeys(db, now),
  };
}
