/**
 * The fraud rules: pure functions from one posted purchase and the account's spending history
 * (as the alerts service learned it from the payments event feed) to a risk score and reasons.
 *
 * Every threshold is a named constant below and documented in docs/alerts.md.
 *
 * Where the history comes from: the alerts service never reads another service's tables, and the
 * seeded months of history are not in the event feed (only purchases posted through the API are).
 * The rules therefore learn "usual spending" from events only, and the history-based rules
 * (AMOUNT_ANOMALY's ratio test, NEW_CATEGORY) stay silent until the account has at least
 * MIN_HISTORY purchases on record. Before that, AMOUNT_ANOMALY falls back to an absolute amount
 * (LARGE_AMOUNT_WITHOUT_HISTORY_MINOR): a conservative choice that misses moderate anomalies on
 * new accounts rather than flagging every first purchase.
 */

/** The reasons an alert can carry, in the order they are reported. */
export const REASONS = ['AMOUNT_ANOMALY', 'VELOCITY', 'NEW_CATEGORY', 'FOREIGN_MERCHANT', 'UNUSUAL_HOUR'] as const;
export type Reason = (typeof REASONS)[number];

// --- parameters ---------------------------------------------------------------------------------

/** Purchases an account needs on record before the history-based rules judge it. */
export const MIN_HISTORY = 5;
/** How many of the account's most recent purchases make up its "usual spending". */
export const HISTORY_WINDOW = 50;

/** AMOUNT_ANOMALY fires when the amount exceeds this multiple of the median of recent purchases... */
export const AMOUNT_ANOMALY_RATIO = 5;
/** ...and is at least this much (minor units: 50.00), so a $6 coffee after $1 ones is not "anomalous". */
export const AMOUNT_ANOMALY_MIN_MINOR = 5_000n;
/** Without MIN_HISTORY purchases on record, an amount at least this large (1,000.00) is an anomaly. */
export const LARGE_AMOUNT_WITHOUT_HISTORY_MINOR = 100_000n;

/** VELOCITY: this many charges (this one included) on one account... */
export const VELOCITY_MAX_CHARGES = 5;
/** ...within this window fire the rule. */
export const VELOCITY_WINDOW_MS = 10 * 60 * 1000;

/** UNUSUAL_HOUR: card-not-present purchases from this hour (inclusive, UTC)... */
export const UNUSUAL_HOUR_START_UTC = 0;
/** ...to this hour (exclusive, UTC). */
export const UNUSUAL_HOUR_END_UTC = 5;

/** Points each reason adds to the risk score (capped at 100). */
export const WEIGHTS: Readonly<Record<Reason, number>> = Object.freeze({
  AMOUNT_ANOMALY: 40,
  VELOCITY: 30,
  NEW_CATEGORY: 15,
  FOREIGN_MERCHANT: 25,
  UNUSUAL_HOUR: 20,
});

/**
 * An alert is raised when the score reaches this threshold. With the weights above, no single
 * reason raises an alert; it takes two strong signals (e.g. a large amount at a foreign merchant).
 */
export const ALERT_THRESHOLD = 50;

// --- inputs -------------------------------------------------------------------------------------

/** One posted purchase, as the PURCHASE_POSTED event describes it. */
export interface PurchaseFacts {
  accountId: string;
  /** Positive minor units. */
  amountMinor: bigint;
  currency: string;
  merchantCategory: string;
  merchantCountry: string;
  /** The account holder's country (ISO 3166-1 alpha-2); null when payments does not know it. */
  userCountry: string | null;
  /** ISO-8601 UTC timestamp. */
  postedAt: string;
  cardPresent: boolean;
}

/** What the alerts service knows about the account's earlier purchases (never this one). */
export interface AccountHistory {
  /** How many purchases the account has on record (all currencies). */
  purchaseCount: number;
  /** Amounts of the most recent purchases in the purchase's currency, up to HISTORY_WINDOW. */
  recentAmountsMinor: readonly bigint[];
  /** When the most recent purchases were posted (ISO-8601), up to HISTORY_WINDOW. */
  recentPostedAt: readonly string[];
  /** Merchant categories the account has bought from. */
  categories: ReadonlySet<string>;
}

export const EMPTY_HISTORY: AccountHistory = Object.freeze({ purchaseCount: 0, recentAmountsMinor: [], recentPostedAt: [], categories: new Set<string>() });

export interface Verdict {
  /** 0..100. */
  riskScore: number;
  reasons: Reason[];
  /** Whether the score reaches ALERT_THRESHOLD. */
  alert: boolean;
}

// --- rules --------------------------------------------------------------------------------------

export function median(values: readonly bigint[]): bigint | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2n;
}

export function amountAnomaly(p: PurchaseFacts, h: AccountHistory): boolean {
  if (h.recentAmountsMinor.length < MIN_HISTORY) return p.amountMinor >= LARGE_AMOUNT_WITHOUT_HISTORY_MINOR;
  const usual = median(h.recentAmountsMinor)!;
  return p.amountMinor >= AMOUNT_ANOMALY_MIN_MINOR && p.amountMinor > usual * BigInt(AMOUNT_ANOMALY_RATIO);
}

export function velocity(p: PurchaseFacts, h: AccountHistory): boolean {
  const at = Date.parse(p.postedAt);
  const since = at - VELOCITY_WINDOW_MS;
  const recent = h.recentPostedAt.filter((t) => {
    const ts = Date.parse(t);
    return ts > since && ts <= at;
  }).length;
  return recent + 1 >= VELOCITY_MAX_CHARGES;
}

export function newCategory(p: PurchaseFacts, h: AccountHistory): boolean {
  return h.purchaseCount >= MIN_HISTORY && !h.categories.has(p.merchantCategory);
}

export function foreignMerchant(p: PurchaseFacts): boolean {
  if (!p.userCountry || !p.merchantCountry) return false;
  return p.merchantCountry.toUpperCase() !== p.userCountry.toUpperCase();
}

export function unusualHour(p: PurchaseFacts): boolean {
  if (p.cardPresent) return false;
  const hour = new Date(p.postedAt).getUTCHours();
  return hour >= UNUSUAL_HOUR_START_UTC && hour < UNUSUAL_HOUR_END_UTC;
}

const CHECKS: Readonly<Record<Reason, (p: PurchaseFacts, h: AccountHistory) => boolean>> = {
  AMOUNT_ANOMALY: amountAnomaly,
  VELOCITY: velocity,
  NEW_CATEGORY: newCategory,
  FOREIGN_MERCHANT: foreignMerchant,
  UNUSUAL_HOUR: unusualHour,
};

export function riskScore(reasons: readonly Reason[]): number {
  return Math.min(
    100,
    reasons.reduce((sum, r) => sum + WEIGHTS[r], 0),
  );
}

/** Runs every rule on one purchase. Pure: same input, same verdict. */
export function evaluate(p: PurchaseFacts, h: AccountHistory): Verdict {
  const reasons = REASONS.filter((r) => CHECKS[r](p, h));
  const score = riskScore(reasons);
  return { riskScore: score, reasons, alert: score >= ALERT_THRESHOLD };
}
