/**
 * The input rules of the two mutations (docs/money.md, "Input rules"), checked before anything is
 * read: every broken rule is reported at once, and a valid input becomes a request with its amount
 * parsed to bigint minor units and its canonical hash (what an idempotency key is bound to).
 */
import { createHash } from 'node:crypto';
import { parseMoney } from '../../../lib/money.js';
import { DESCRIPTION_MAX_CHARS, IDEMPOTENCY_KEY_MAX_CHARS, NOTE_MAX_CHARS } from '../limits.js';
import type { MakePurchaseInput, MoneyInput, PurchaseRequest, SendTransferInput, TransferRequest, UserError } from './types.js';

/** Unicode code points, as the limits count them. */
const chars = (s: string) => Array.from(s).length;

/** An optional text: absent, null and empty all mean none. */
const optional = (s: string | null | undefined): string | null => (s === undefined || s === null || s === '' ? null : s);

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

/** sha256 of the canonical input (fixed field order, parsed amount). */
function requestHash(parts: readonly (string | boolean | null)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export type Validated<R> = { request: R; errors: null } | { request: null; errors: UserError[] };

/** sendTransfer's input rules; the recipient handle is normalized (trimmed, no leading @, lower case). */
export function transferRequest(userId: string, input: SendTransferInput, now: Date): Validated<TransferRequest> {
  const errors: UserError[] = [];
  checkKey(input.idempotencyKey, errors);
  const note = optional(input.note);
  if (note !== null && chars(note) > NOTE_MAX_CHARS) {
    errors.push({ code: 'INVALID_INPUT', field: ['input', 'note'], message: `note must be at most ${NOTE_MAX_CHARS} characters.` });
  }
  const amount = checkAmount(input.amount, errors);
  if (errors.length > 0 || !amount) return { request: null, errors };
  const handle = input.toHandle.trim().replace(/^@/, '').toLowerCase();
  return {
    errors: null,
    request: {
      operation: 'sendTransfer',
      userId,
      key: input.idempotencyKey,
      hash: requestHash(['sendTransfer', input.fromAccountId, handle, amount.minor.toString(), amount.currency, note]),
      amount,
      postedAt: now.toISOString(),
      fromAccountId: input.fromAccountId,
      toHandle: input.toHandle,
      handle,
      note,
    },
  };
}

/** makePurchase's input rules; `cardPresent` defaults to true. */
export function purchaseRequest(userId: string, input: MakePurchaseInput, now: Date): Validated<PurchaseRequest> {
  const errors: UserError[] = [];
  checkKey(input.idempotencyKey, errors);
  const description = optional(input.description);
  if (description !== null && chars(description) > DESCRIPTION_MAX_CHARS) {
    errors.push({ code: 'INVALID_INPUT', field: ['input', 'description'], message: `description must be at most ${DESCRIPTION_MAX_CHARS} characters.` });
  }
  const amount = checkAmount(input.amount, errors);
  if (errors.length > 0 || !amount) return { request: null, errors };
  const cardPresent = input.cardPresent ?? true;
  return {
    errors: null,
    request: {
      operation: 'makePurchase',
      userId,
      key: input.idempotencyKey,
      hash: requestHash(['makePurchase', input.accountId, input.merchantId, amount.minor.toString(), amount.currency, description, cardPresent]),
      amount,
      postedAt: now.toISOString(),
      accountId: input.accountId,
      merchantId: input.merchantId,
      description,
      cardPresent,
    },
  };
}
