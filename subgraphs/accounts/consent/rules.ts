/**
 * The consent rules, pure: scopes, purpose, duration, the status a consent has at an instant, and
 * what a grant's input must be. One place, used by the API, the enforcement and oversight alike.
 */
import { createHash } from 'node:crypto';
import type { ConsentRow } from './data.js';

export const CONSENT_SCOPES = ['ACCOUNT_DETAILS', 'BALANCES', 'TRANSACTIONS', 'MONEY_MOVEMENT'] as const;
export type ConsentScope = (typeof CONSENT_SCOPES)[number];
export type ConsentStatus = 'ACTIVE' | 'EXPIRED' | 'REVOKED';

/** The longest consent, in days: 12 CFR 1033.421(b)(2) asks for reauthorization after at most one year. */
export const MAX_CONSENT_DAYS = 365;

/** Which scope each consent-bound coordinate needs (the mapping; docs/consent.md). */
export const SCOPE_OF_COORDINATE: Readonly<Record<string, ConsentScope>> = {
  'Account.mask': 'ACCOUNT_DETAILS',
  'Account.displayName': 'ACCOUNT_DETAILS',
  'Account.balance': 'BALANCES',
  'Account.transactions': 'TRANSACTIONS',
  'Mutation.sendTransfer': 'MONEY_MOVEMENT',
  'Mutation.makePurchase': 'MONEY_MOVEMENT',
};

export function isConsentScope(value: unknown): value is ConsentScope {
  return (CONSENT_SCOPES as readonly unknown[]).includes(value);
}

/**
 * Where a consent stands at `now`: revoked from its revocation, expired from its `expiresAt`
 * (whichever came first), active before both. Derived at every read: no job has to run for an
 * expired consent to stop counting.
 */
export function statusAt(c: Pick<ConsentRow, 'expiresAt' | 'revokedAt'>, now: Date): ConsentStatus {
  const t = now.toISOString();
  const revoked = c.revokedAt !== null && c.revokedAt <= t;
  const expired = c.expiresAt <= t;
  if (revoked && expired) return c.revokedAt! < c.expiresAt ? 'REVOKED' : 'EXPIRED';
  if (revoked) return 'REVOKED';
  return expired ? 'EXPIRED' : 'ACTIVE';
}

/** Whether any of `consents` (one institution's) is active at `now` with `scope`. */
export function allows(consents: readonly ConsentRow[], scope: ConsentScope, now: Date): boolean {
  return consents.some((c) => c.scopes.includes(scope) && statusAt(c, now) === 'ACTIVE');
}

export interface GrantInput {
  institutionId: string;
  scopes: readonly string[];
  durationDays: number;
  disclosureVersion: string;
  idempotencyKey: string;
}

export type ConsentErrorCode =
  | 'INSTITUTION_NOT_FOUND'
  | 'NO_LINKED_ACCOUNT'
  | 'SCOPES_EMPTY'
  | 'SCOPES_DUPLICATED'
  | 'INVALID_DURATION'
  | 'DISCLOSURE_VERSION_UNKNOWN'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INVALID_INPUT'
  | 'CONSENT_ALREADY_REVOKED'
  | 'NOT_FOUND';

export interface ConsentUserError {
  code: ConsentErrorCode;
  field: string[] | null;
  message: string;
}

const err = (code: ConsentErrorCode, field: string[] | null, message: string): ConsentUserError => ({ code, field, message });

/** The input rules of a grant that need no database (every broken rule, in input order). */
export function grantInputErrors(input: GrantInput, publishedVersion: string): ConsentUserError[] {
  const out: ConsentUserError[] = [];
  if (input.scopes.length === 0) out.push(err('SCOPES_EMPTY', ['input', 'scopes'], 'Consent to at least one scope.'));
  else if (new Set(input.scopes).size !== input.scopes.length) out.push(err('SCOPES_DUPLICATED', ['input', 'scopes'], 'Give each scope at most once.'));
  else if (!input.scopes.every(isConsentScope)) out.push(err('INVALID_INPUT', ['input', 'scopes'], `Scopes are ${CONSENT_SCOPES.join(', ')}.`));
  if (!Number.isInteger(input.durationDays) || input.durationDays < 1 || input.durationDays > MAX_CONSENT_DAYS) {
    out.push(err('INVALID_DURATION', ['input', 'durationDays'], `A consent lasts 1 to ${MAX_CONSENT_DAYS} days.`));
  }
  if (input.disclosureVersion !== publishedVersion) {
    out.push(
      err(
        'DISCLOSURE_VERSION_UNKNOWN',
        ['input', 'disclosureVersion'],
        `The current disclosure is version ${publishedVersion}: read it (Query.consentDisclosure) and agree to that one.`,
      ),
    );
  }
  if (input.idempotencyKey.length < 1 || input.idempotencyKey.length > 255) {
    out.push(err('INVALID_INPUT', ['input', 'idempotencyKey'], 'The idempotency key is 1 to 255 characters.'));
  }
  return out;
}

export function consentError(code: ConsentErrorCode, field: string[] | null, message: string): ConsentUserError {
  return err(code, field, message);
}

/** What identifies a grant's input for idempotency (scopes in any order are the same consent). */
export function grantRequestHash(input: GrantInput): string {
  const canonical = JSON.stringify([input.institutionId, [...input.scopes].sort(), input.durationDays, input.disclosureVersion]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** `grantedAt` plus `days` days. */
export function expiryOf(grantedAt: Date, days: number): Date {
  return new Date(grantedAt.getTime() + days * 86_400_000);
}
