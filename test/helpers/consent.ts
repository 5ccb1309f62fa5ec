/**
 * Helpers of the consent tests (test/consent/, and the scale suite): the consent operations,
 * granting and revoking through the gateway like a client, and an institution's oversight token.
 */
import { expect } from 'vitest';
import { signInstitutionToken } from '../../lib/auth.js';
import { REVOKED_SEED_CONSENT } from '../../seeds/fixture.js';
import { op } from './contract.js';
import { expectData, type UserErrorLike } from './matchers.js';
import { TEST_JWT_SECRET } from './stack.js';
import { newKey } from './money.js';

export const GRANT = op('GrantConsent');
export const REVOKE = op('RevokeConsent');
export const MY_CONSENTS = op('MyConsents');
export const DISCLOSURE = op('ConsentDisclosure');

export const ALL_SCOPES = ['ACCOUNT_DETAILS', 'BALANCES', 'TRANSACTIONS', 'MONEY_MOVEMENT'] as const;

export interface ConsentOut {
  id: string;
  institution: { id: string };
  scopes: string[];
  purpose: string;
  disclosureVersion: string;
  grantedAt: string;
  expiresAt: string;
  revokedAt: string | null;
  status: string;
}
export interface ConsentPayload {
  consent: ConsentOut | null;
  userErrors: UserErrorLike[];
}

/** What a client sends to gql: the gateway of a stack, or one gateway of a cluster. */
export type Gql = <T>(
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
) => Promise<{ data?: T | null; errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[]; status: number }>;

/** The current disclosure version (Query.consentDisclosure), read like a client. */
export async function disclosureVersion(gql: Gql, token: string, institutionId: string): Promise<string> {
  const r = await gql<{ consentDisclosure: { version: string } }>(DISCLOSURE, { institutionId }, token);
  return expectData(r).consentDisclosure.version;
}

export async function grant(gql: Gql, token: string, input: Record<string, unknown>): Promise<ConsentPayload> {
  const r = await gql<{ grantConsent: ConsentPayload }>(GRANT, { input: { idempotencyKey: newKey(), ...input } }, token);
  return expectData(r).grantConsent;
}

export async function revoke(gql: Gql, token: string, consentId: string): Promise<ConsentPayload> {
  const r = await gql<{ revokeConsent: ConsentPayload }>(REVOKE, { input: { consentId } }, token);
  return expectData(r).revokeConsent;
}

export async function myConsents(gql: Gql, token: string): Promise<ConsentOut[]> {
  return expectData(await gql<{ me: { consents: ConsentOut[] } }>(MY_CONSENTS, {}, token)).me.consents;
}

/** The user's active consent to `institutionId`, which the seeds grant. */
export async function activeConsent(gql: Gql, token: string, institutionId: string): Promise<ConsentOut> {
  const c = (await myConsents(gql, token)).find((x) => x.institution.id === institutionId && x.status === 'ACTIVE');
  expect(c, `an active consent to ${institutionId}`).toBeDefined();
  return c!;
}

/** An institution's oversight credential, as `npm run -s token -- --institution <id> oversight` mints it. */
export function oversightToken(institutionId: string): Promise<string> {
  return signInstitutionToken(TEST_JWT_SECRET, institutionId);
}

/** A CONSENT_REQUIRED error at `path` (joined with '.'), naming the institution and scope. */
export function expectConsentRequired(
  r: { errors?: { path?: (string | number)[]; extensions?: Record<string, unknown> }[] },
  path: string,
  institutionId: string,
  scope: string,
): void {
  const shown = JSON.stringify(r.errors);
  const e = r.errors?.find((x) => x.extensions?.code === 'CONSENT_REQUIRED' && x.path?.join('.') === path);
  expect(e, `CONSENT_REQUIRED at ${path}: ${shown}`).toBeDefined();
  expect(e!.extensions).toMatchObject({ institutionId, scope });
}

/**
 * Grants back, through the gateway, the consent the seeds show revoked (dave's to his bank), for
 * tests that move money from or read every seeded account and are not about consent.
 */
export async function regrantRevokedSeedConsent(gql: Gql, tokenOf: (handle: string) => Promise<string>): Promise<void> {
  const token = await tokenOf(REVOKED_SEED_CONSENT.handle);
  const version = await disclosureVersion(gql, token, REVOKED_SEED_CONSENT.institutionId);
  const out = await grant(gql, token, {
    institutionId: REVOKED_SEED_CONSENT.institutionId,
    scopes: [...ALL_SCOPES],
    durationDays: 365,
    disclosureVersion: version,
  });
  expect(out.userErrors).toEqual([]);
}
