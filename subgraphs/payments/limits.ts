/**
 * Every money-movement limit and input rule of the payments subgraph, in one place.
 * Documented in docs/money.md ("Limits"). Amounts are integer minor units (bigint).
 */

export interface TransferLimit {
  /** Largest single transfer (LIMIT_EXCEEDED above it). */
  perTransferMinor: bigint;
  /** Most a user may send in transfers per UTC calendar day, per currency (LIMIT_EXCEEDED above it). */
  dailyMinor: bigint;
}

/**
 * Transfer limits per currency. USD/EUR/GBP: 2,500.00 per transfer, 5,000.00 per day; SEK and JPY
 * are scaled to roughly the same value. Purchases are bounded by funds / credit only (and by
 * lib/money.ts's MAX_MAJOR_UNITS sanity cap, which is INVALID_AMOUNT).
 */
export const TRANSFER_LIMITS: Readonly<Record<string, TransferLimit>> = Object.freeze({
  USD: { perTransferMinor: 250_000n, dailyMinor: 500_000n },
  EUR: { perTransferMinor: 250_000n, dailyMinor: 500_000n },
  GBP: { perTransferMinor: 250_000n, dailyMinor: 500_000n },
  SEK: { perTransferMinor: 2_500_000n, dailyMinor: 5_000_000n },
  JPY: { perTransferMinor: 400_000n, dailyMinor: 800_000n },
});

/** Transfer notes: at most this many characters (Unicode code points). */
export const NOTE_MAX_CHARS = 280;
/** Purchase descriptions: at most this many characters (Unicode code points). */
export const DESCRIPTION_MAX_CHARS = 280;
/** Idempotency keys: 1 to this many characters (Unicode code points). */
export const IDEMPOTENCY_KEY_MAX_CHARS = 255;
/** Idempotency keys are kept at least this long (the contract promises at least 24 hours). */
export const IDEMPOTENCY_RETENTION_HOURS = 48;
/** How often the payments service prunes idempotency keys older than the retention. */
export const IDEMPOTENCY_PRUNE_INTERVAL_MS = 60 * 60 * 1000;
/** Internal `events` route: largest page. */
export const EVENTS_MAX_LIMIT = 500;
