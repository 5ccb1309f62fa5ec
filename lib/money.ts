/**
 * Money: exact, always. Amounts are integer minor units (bigint) inside paygraph and decimal
 * strings on the API. No JS number ever holds an amount.
 */

/** ISO 4217 currencies paygraph accepts, with their minor-unit exponent. */
export const CURRENCIES: Readonly<Record<string, number>> = Object.freeze({
  USD: 2,
  EUR: 2,
  GBP: 2,
  SEK: 2,
  JPY: 0,
});

/** Largest single amount accepted on the API, in major units (one million). */
export const MAX_MAJOR_UNITS = 1_000_000n;

export interface Money {
  amount: string;
  currency: string;
}

export type MoneyParseError = { code: 'UNSUPPORTED_CURRENCY'; message: string } | { code: 'INVALID_AMOUNT'; message: string };

export type MoneyParseResult = { ok: true; minor: bigint; currency: string } | { ok: false; error: MoneyParseError };

const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

export function minorUnitsOf(currency: string): number {
  const exp = CURRENCIES[currency];
  if (exp === undefined) throw new Error(`unsupported currency ${currency}`);
  return exp;
}

/**
 * Parse an API amount ("12.50") in a currency into minor units. Rejects zero, negatives,
 * exponents, more decimals than the currency has, non-numeric strings and amounts above the cap.
 */
export function parseMoney(input: { amount: unknown; currency: unknown }): MoneyParseResult {
  const currency = typeof input.currency === 'string' ? input.currency : '';
  const exp = CURRENCIES[currency];
  if (exp === undefined) {
    return {
      ok: false,
      error: {
        code: 'UNSUPPORTED_CURRENCY',
        message: `Currency "${String(input.currency).slice(0, 8)}" is not supported; use one of ${Object.keys(CURRENCIES).join(', ')}.`,
      },
    };
  }
  const amount = input.amount;
  if (typeof amount !== 'string') {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: 'Amount must be a decimal string such as "12.50".' } };
  }
  const m = DECIMAL.exec(amount);
  if (!m) {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: `Amount must be a positive decimal string such as "12.50" (no sign, exponent or spaces).` } };
  }
  const whole = m[1]!;
  const frac = m[2] ?? '';
  if (frac.length > exp) {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: `${currency} amounts have at most ${exp} decimal places.` } };
  }
  if (whole.length > 16) {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: `Amount is above the maximum of ${MAX_MAJOR_UNITS} ${currency}.` } };
  }
  const minor = BigInt(whole) * 10n ** BigInt(exp) + (frac.length ? BigInt(frac.padEnd(exp, '0')) : 0n);
  if (minor <= 0n) {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: 'Amount must be greater than zero.' } };
  }
  if (minor > MAX_MAJOR_UNITS * 10n ** BigInt(exp)) {
    return { ok: false, error: { code: 'INVALID_AMOUNT', message: `Amount is above the maximum of ${MAX_MAJOR_UNITS} ${currency}.` } };
  }
  return { ok: true, minor, currency };
}

/** Format minor units as an API decimal string: 1250n USD -> "12.50", -5n USD -> "-0.05". */
export function formatMinor(minor: bigint, currency: string): string {
  const exp = minorUnitsOf(currency);
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  if (exp === 0) return `${negative ? '-' : ''}${abs}`;
  const base = 10n ** BigInt(exp);
  const whole = abs / base;
  const frac = (abs % base).toString().padStart(exp, '0');
  return `${negative ? '-' : ''}${whole}.${frac}`;
}

export function money(minor: bigint, currency: string): Money {
  return { amount: formatMinor(minor, currency), currency };
}

/** Database drivers return integers as number (SQLite) or string (PostgreSQL bigint). */
export function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`unsafe integer from database: ${value}`);
    return BigInt(value);
  }
  if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) return BigInt(value);
  if (value === null || value === undefined) return 0n;
  throw new Error(`not an integer amount: ${String(value)}`);
}
