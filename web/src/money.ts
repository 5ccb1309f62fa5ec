/**
 * Money on screen, exact: the API sends decimal strings ("1234.50"), and a float would round
 * (0.1 + 0.2, or any amount past 2^53 minor units). Intl.NumberFormat lays out the currency for
 * the locale; the digits never pass through a Number: the integer part is formatted as a BigInt,
 * and the fraction digits as an integer of their own (leading zeros kept), never rounded.
 */

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

export interface MoneyLike {
  amount: string;
  currency: string;
}

/** Formats a decimal string in a currency, e.g. ("-1234.5", "USD", "en-US") → "-$1,234.50". */
export function formatMoney(amount: string, currency: string, locale?: string): string {
  const m = DECIMAL.exec(amount.trim());
  if (!m) throw new Error(`not a decimal amount: ${JSON.stringify(amount)}`);
  const [, minus, whole, given = ''] = m;
  const digits = new Intl.NumberFormat(locale, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  // Pad to the currency's digits; never drop a digit the API sent (no rounding, ever).
  const fraction = given.length >= digits ? given : given.padEnd(digits, '0');
  const negative = minus === '-' && /[1-9]/.test(whole! + fraction);
  const layout = new Intl.NumberFormat(locale, {
    style: 'currency',
    currency,
    minimumFractionDigits: fraction.length,
    maximumFractionDigits: fraction.length,
  });
  // The locale's layout (sign, symbol, separators, their order) from a template amount...
  const template = layout.formatToParts(negative ? -1n : 1n);
  // ...and the grouped integer digits of the real amount, exactly (BigInt).
  const grouped = new Intl.NumberFormat(locale, { useGrouping: true, maximumFractionDigits: 0 })
    .formatToParts(BigInt(whole!))
    .filter((p) => p.type === 'integer' || p.type === 'group')
    .map((p) => p.value)
    .join('');
  // The fraction's digits in the locale's numbering system (Arabic-Indic in ar-EG...), leading zeros kept.
  const localDigits =
    fraction.length > 0 && fraction.length <= 21
      ? new Intl.NumberFormat(locale, { useGrouping: false, minimumIntegerDigits: fraction.length }).format(BigInt(fraction))
      : fraction;
  let out = '';
  let integerDone = false;
  for (const part of template) {
    if (part.type === 'integer') {
      if (!integerDone) out += grouped;
      integerDone = true;
    } else if (part.type === 'group') {
      // (the template's 1 has none)
    } else if (part.type === 'fraction') out += localDigits;
    else out += part.value;
  }
  return out;
}

export function money(m: MoneyLike, locale?: string): string {
  return formatMoney(m.amount, m.currency, locale);
}

/**
 * What the amount field accepts before it is sent: digits, and at most `digits` decimals after a
 * dot ("12", "12.5", "12.50"). The API checks again (INVALID_AMOUNT); this only saves a round trip.
 */
export function amountInputError(text: string, digits = 2): string | null {
  const t = text.trim();
  if (t === '') return 'Enter an amount.';
  if (!/^\d+(\.\d+)?$/.test(t)) return 'Use digits, with a dot for cents (e.g. 12.50).';
  const frac = t.split('.')[1] ?? '';
  if (frac.length > digits) return `At most ${digits} decimals.`;
  if (!/[1-9]/.test(t)) return 'The amount must be more than zero.';
  return null;
}

/** Whether a decimal string is negative (for colouring debits), without a float. */
export function isNegative(amount: string): boolean {
  return amount.trim().startsWith('-') && /[1-9]/.test(amount);
}
