/**
 * The signed internal route `consent` (POST /internal/consent), from the payments service alone:
 * the consent decisions for the account fields and movements it owns (`Account.balance`,
 * `Account.transactions`, `Mutation.sendTransfer`, `Mutation.makePurchase`). The payments service
 * calls it once per request, batching that request's checks (subgraphs/payments/consent.ts), and
 * caches nothing: every operation is decided on the consents as they are when it runs.
 *
 * Body: `{ userId, issuer, clientId, client, requestId, operationHash, checks: [{ accountId, coordinate }] }`
 * -> `{ decisions: [{ accountId, coordinate, scope, institutionId, allowed }] }`, in order.
 * Refusals are audited here (gate.ts), before the answer.
 */
import { z } from 'zod';
import { HttpError } from '../../../lib/errors.js';
import type { InternalRoute } from '../../definition.js';
import { ConsentAuditUnavailable, decideConsent } from './gate.js';
import { SCOPE_OF_COORDINATE } from './rules.js';

/** Most checks one call may carry. */
export const MAX_CONSENT_CHECKS = 500;

const body = z.object({
  userId: z.string().min(1).max(64),
  // Optional (null) so that a payments process older than the accounts one still gets decisions.
  issuer: z.string().max(200).nullable().default(null),
  clientId: z.string().max(100).nullable().default(null),
  client: z.string().max(100).nullable(),
  requestId: z.string().max(64).nullable(),
  operationHash: z.string().regex(/^[0-9a-f]{64}$/),
  checks: z
    .array(z.object({ accountId: z.string().min(1).max(64), coordinate: z.enum(Object.keys(SCOPE_OF_COORDINATE) as [string, ...string[]]) }))
    .min(1)
    .max(MAX_CONSENT_CHECKS),
});

export const consentRoute: InternalRoute = async (env, raw) => {
  const parsed = body.safeParse(raw);
  if (!parsed.success) throw new HttpError(400, `consent check rejected: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { checks, ...asker } = parsed.data;
  try {
    return { decisions: await decideConsent(env.db, asker, checks) };
  } catch (err) {
    if (err instanceof ConsentAuditUnavailable) throw new HttpError(503, 'consent refusal could not be audited', 'AUDIT_UNAVAILABLE');
    throw err;
  }
};
