/** Human words for the API's enums. */
export const ACCOUNT_KIND: Record<string, string> = {
  CHECKING: 'Checking',
  SAVINGS: 'Savings',
  CREDIT_CARD: 'Credit card',
  DEBIT_CARD: 'Debit card',
};
/** An account as a line: its name and mask, or its kind and dots when consent withholds them (null). */
export function accountName(a: { displayName: string | null; mask: string | null; kind: string }): string {
  return `${a.displayName ?? ACCOUNT_KIND[a.kind] ?? a.kind} •••• ${a.mask ?? '····'}`;
}
export const INSTITUTION_KIND: Record<string, string> = { BANK: 'Bank', CARD_ISSUER: 'Card issuer' };
export const REASON: Record<string, string> = {
  AMOUNT_ANOMALY: 'Unusually large amount',
  VELOCITY: 'Many charges in a short time',
  NEW_CATEGORY: 'A kind of merchant you have not used',
  FOREIGN_MERCHANT: 'Merchant abroad',
  UNUSUAL_HOUR: 'Unusual time of day',
  CARD_NOT_PRESENT: 'Card not present',
};
export const reason = (r: string) => REASON[r] ?? r.toLowerCase().replace(/_/g, ' ');

export function dateTime(iso: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/** The last segment of a userError's field path (["input", "toHandle"] → "toHandle"). */
export function fieldOf(path: readonly string[] | null): string | null {
  return path && path.length > 0 ? path[path.length - 1]! : null;
}
