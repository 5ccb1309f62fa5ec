/**
 * Which institutions' data the app may not show, from the two signals the API gives: the
 * `CONSENT_REQUIRED` errors of a partial answer (extensions `institutionId`, `scope`; the rest of
 * the answer is there, errorPolicy 'all'), and the user's consents (an institution with no ACTIVE
 * one). The second also covers an answer read from the cache, which keeps no errors.
 */
import type { ConsentRow } from '../operations.js';

export type Access = 'ok' | 'revoked' | 'expired' | 'none';

interface ErrorLike {
  extensions?: Record<string, unknown>;
}

/** Institution ids named by CONSENT_REQUIRED errors of an Apollo error (CombinedGraphQLErrors), if any. */
export function consentRequired(error: unknown): Set<string> {
  const errors = (error as { errors?: readonly ErrorLike[] } | undefined)?.errors ?? [];
  const out = new Set<string>();
  for (const e of errors) if (e.extensions?.code === 'CONSENT_REQUIRED' && typeof e.extensions.institutionId === 'string') out.add(e.extensions.institutionId);
  return out;
}

/** Whether the error has anything besides CONSENT_REQUIRED (a real failure, shown as such). */
export function otherErrors(error: unknown): boolean {
  if (!error) return false;
  const errors = (error as { errors?: readonly ErrorLike[] }).errors;
  return !errors || errors.some((e) => e.extensions?.code !== 'CONSENT_REQUIRED');
}

/** The app's access to an institution's data: ok, or why not (the newest consent's fate). */
export function accessTo(institutionId: string, consents: readonly ConsentRow[] | undefined, refused: ReadonlySet<string>): Access {
  const mine = (consents ?? []).filter((c) => c.institution.id === institutionId);
  if (consents && mine.some((c) => c.status === 'ACTIVE') && !refused.has(institutionId)) return 'ok';
  if (!consents && !refused.has(institutionId)) return 'ok';
  const newest = [...mine].sort((a, b) => b.grantedAt.localeCompare(a.grantedAt))[0];
  return newest?.status === 'EXPIRED' ? 'expired' : newest ? 'revoked' : 'none';
}

export const ACCESS_WORDS: Record<Exclude<Access, 'ok'>, string> = {
  revoked: 'Access revoked',
  expired: 'Consent expired',
  none: 'No consent given',
};

export const SCOPE_WORDS: Record<string, string> = {
  ACCOUNT_DETAILS: 'account names and last digits',
  BALANCES: 'balances',
  TRANSACTIONS: 'history',
  MONEY_MOVEMENT: 'sending and paying from it',
};
