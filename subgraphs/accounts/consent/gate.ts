/**
 * Consent enforcement, decided where the consents live: may the signed-in user's operation use
 * this account's data for this coordinate? Read afresh from the database for every request (no
 * cache outlives a revocation: a revocation committed before an operation starts is seen by it, in
 * every process). Each refusal, and each expiry the first time it is observed, is appended to the
 * data-access log in the same transaction as the expiry fact, with its institution.
 *
 * The accounts subgraph asks it for `Account.mask` and `Account.displayName`; the payments
 * subgraph asks it through the signed internal route `consent` (route.ts) for `Account.balance`,
 * `Account.transactions` and money movements from an account.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { accountsByIds, appendOwnRecords, type AccountRow, type NewDataAccess } from '../data.js';
import { consentsOfUsers, insertConsentEvent, type ConsentRow } from './data.js';
import { allows, SCOPE_OF_COORDINATE, statusAt, type ConsentScope } from './rules.js';

export interface ConsentCheck {
  accountId: string;
  /** The coordinate asking (rules.ts SCOPE_OF_COORDINATE), e.g. `Account.balance`. */
  coordinate: string;
}

export interface ConsentDecision extends ConsentCheck {
  scope: ConsentScope;
  /** The account's institution; null when the account is not the user's (the owner's own NOT_FOUND applies). */
  institutionId: string | null;
  allowed: boolean;
}

/** Who asks, for the audit records. */
export interface ConsentAsker {
  userId: string;
  /** The caller's verified issuer and credential client id (lib/auth.ts Caller); null when unknown. */
  issuer: string | null;
  clientId: string | null;
  /** As the caller declared it. */
  client: string | null;
  requestId: string | null;
  /** sha256 (hex) of the subgraph request's document (the request id links it to the gateway's record). */
  operationHash: string;
}

/** The consent decision's audit records could not be written: nothing is answered. */
export class ConsentAuditUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super(`consent audit unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export function documentHash(source: string | undefined): string {
  return createHash('sha256')
    .update(source ?? '')
    .digest('hex');
}

function record(asker: ConsentAsker, at: string, layer: string, decision: 'ALLOWED' | 'REFUSED', coordinates: string[], institutionId: string): NewDataAccess {
  return {
    at,
    userId: asker.userId,
    purpose: 'payments',
    issuer: asker.issuer,
    clientId: asker.clientId,
    client: asker.client,
    operationName: null,
    operationHash: asker.operationHash,
    coordinates,
    decision,
    layer,
    requestId: asker.requestId,
    institutions: [institutionId],
  };
}

/**
 * Records, once, the expiry of each of `consents` past its `expiresAt` (and not revoked before):
 * the fact in consent_events and its audit record, in `trx`.
 */
export async function observeExpiries(trx: Knex, asker: Omit<ConsentAsker, 'userId'> & { userId: string | null }, consents: readonly ConsentRow[], now: Date) {
  for (const c of consents) {
    if (c.expiryRecorded || statusAt(c, now) !== 'EXPIRED') continue;
    if (await insertConsentEvent(trx, c.id, 'EXPIRED', c.expiresAt)) {
      await appendOwnRecords(trx, [
        { ...record({ ...asker, userId: c.userId }, now.toISOString(), 'consent-expiry', 'REFUSED', ['Consent.status'], c.institutionId), userId: c.userId },
      ]);
    }
  }
}

/** The decisions for `checks`, in order; refusals and first-observed expiries audited (see the header). */
export async function decideConsent(
  db: Knex,
  asker: ConsentAsker,
  checks: readonly ConsentCheck[],
  now: Date = new Date(),
  /** Account rows this request already read from this database (skips reading them again). */
  known: ReadonlyMap<string, AccountRow> = new Map(),
): Promise<ConsentDecision[]> {
  const ids = [...new Set(checks.map((c) => c.accountId))];
  const missing = ids.filter((id) => !known.has(id));
  const [read, consents] = await Promise.all([missing.length ? accountsByIds(db, missing) : [], consentsOfUsers(db, [asker.userId])]);
  const accounts = [...read, ...ids.flatMap((id) => (known.has(id) ? [known.get(id)!] : []))];
  const institutionOf = new Map(accounts.filter((a) => a.userId === asker.userId).map((a) => [a.id, a.institutionId]));
  const decisions = checks.map((check): ConsentDecision => {
    const scope = SCOPE_OF_COORDINATE[check.coordinate];
    if (!scope) throw new Error(`no consent scope for ${check.coordinate}`);
    const institutionId = institutionOf.get(check.accountId) ?? null;
    const allowed =
      institutionId !== null &&
      allows(
        consents.filter((c) => c.institutionId === institutionId),
        scope,
        now,
      );
    return { ...check, scope, institutionId, allowed };
  });
  const refused = new Map<string, Set<string>>();
  for (const d of decisions)
    if (!d.allowed && d.institutionId) (refused.get(d.institutionId) ?? refused.set(d.institutionId, new Set()).get(d.institutionId)!).add(d.coordinate);
  const expiring = consents.some((c) => !c.expiryRecorded && statusAt(c, now) === 'EXPIRED');
  if (refused.size > 0 || expiring) {
    // A refusal that cannot be audited is not answered (fail closed, as the fence's own layer 5).
    await db
      .transaction(async (trx) => {
        await observeExpiries(trx, asker, consents, now);
        const at = now.toISOString();
        const records = [...refused]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([inst, coords]) => record(asker, at, 'consent', 'REFUSED', [...coords].sort(), inst));
        await appendOwnRecords(trx, records);
      })
      .catch((err: unknown) => {
        throw new ConsentAuditUnavailable(err);
      });
  }
  return decisions;
}
