/**
 * The shapes of money movement: the mutations' inputs and results as the schema has them, the
 * validated requests queued for the ledger, and what each request came to.
 */

/** Stable codes of business failures, returned in `userErrors` (the schema's UserErrorCode; docs/money.md). */
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
  | 'INVALID_INPUT'
  // No active MONEY_MOVEMENT consent for the account's institution (subgraphs/payments/consent.ts).
  | 'CONSENT_REQUIRED';

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

export type TransferResult = { transferId: string; userErrors: [] } | { transferId: null; userErrors: UserError[] };
export type PurchaseResult = { purchaseId: string; userErrors: [] } | { purchaseId: null; userErrors: UserError[] };

export type Operation = 'sendTransfer' | 'makePurchase';

/** A validated movement request (input rules passed), waiting for its ledger transaction. */
interface BaseRequest {
  userId: string;
  operation: Operation;
  key: string;
  /** requestHash of the canonical input: what the idempotency key is bound to. */
  hash: string;
  amount: { minor: bigint; currency: string };
  postedAt: string;
  /** The W3C traceparent of the request that asked for it (lib/tracing.ts), for its outbox event; null when untraced. */
  traceparent?: string | null;
}

export interface TransferRequest extends BaseRequest {
  operation: 'sendTransfer';
  fromAccountId: string;
  /** As sent (for messages). */
  toHandle: string;
  /** Normalized: trimmed, without a leading @, lower case. */
  handle: string;
  note: string | null;
}

export interface PurchaseRequest extends BaseRequest {
  operation: 'makePurchase';
  accountId: string;
  merchantId: string;
  description: string | null;
  cardPresent: boolean;
}

export type MovementRequest = TransferRequest | PurchaseRequest;

/** What a movement came to: the transfer or purchase id (new or stored), or refusal errors. */
export type Outcome = { id: string; errors: null } | { id: null; errors: UserError[] };
