/**
 * Consent for the account data the payments subgraph owns (`Account.balance`,
 * `Account.transactions`) and for moving money from an account (`sendTransfer`, `makePurchase`).
 * Consents live in the accounts subgraph, which decides and audits (subgraphs/accounts/consent/);
 * this service asks it through the signed internal route `consent`, once per request with that
 * request's checks batched (a DataLoader per request), and caches nothing: an operation that
 * starts after a revocation committed is refused, in every process (docs/consent.md).
 */
import { createHash } from 'node:crypto';
import DataLoader from 'dataloader';
import type { GraphQLResolveInfo } from 'graphql';
import type { Caller } from '../../lib/auth.js';
import { consentAuditUnavailable, consentRequired } from '../../lib/errors.js';
import { callInternal, InternalCallError } from '../../lib/transport/internal-client.js';
import type { ServiceEnv } from '../definition.js';

export type ConsentCoordinate = 'Account.balance' | 'Account.transactions' | 'Mutation.sendTransfer' | 'Mutation.makePurchase';

export interface ConsentCheck {
  accountId: string;
  coordinate: ConsentCoordinate;
}

export interface ConsentDecision extends ConsentCheck {
  scope: string;
  /** Null: the account is not the user's (its owner's NOT_FOUND / ACCOUNT_NOT_FOUND applies). */
  institutionId: string | null;
  allowed: boolean;
}

export interface ConsentAsker {
  userId: string;
  /** The caller's verified issuer and credential client id (lib/auth.ts Caller), for the audit records. */
  issuer: string | null;
  clientId: string | null;
  client: string | null;
  requestId: string | null;
  operationHash: string;
}

/** Who decides consent: the accounts service (remoteConsentGate), or a test's own. */
export interface ConsentGate {
  decide(asker: ConsentAsker, checks: readonly ConsentCheck[]): Promise<ConsentDecision[]>;
}

/** The accounts service's decisions, over its signed internal route (any of its processes: they share its database). */
export function remoteConsentGate(env: Pick<ServiceEnv, 'signer' | 'peers'>): ConsentGate {
  return {
    async decide(asker, checks) {
      const base = env.peers.accounts;
      // Fail closed: without the accounts service there is no consent, so no data.
      if (!base) throw new Error('consent check: no URL for the accounts service');
      const out = await callInternal<{ decisions: ConsentDecision[] }>(
        env.signer,
        'accounts',
        base,
        'consent',
        { ...asker, checks },
        { requestId: asker.requestId },
      ).catch((err: unknown) => {
        // The accounts service could not audit a refusal: nothing is answered (fail closed).
        if (err instanceof InternalCallError && err.status === 503) throw consentAuditUnavailable();
        throw err;
      });
      if (!Array.isArray(out.decisions) || out.decisions.length !== checks.length) throw new Error('consent check: malformed answer');
      return out.decisions;
    },
  };
}

/** What a resolver's context offers the consent check. */
interface ConsentCtx {
  caller: Caller;
  requestId: string;
  loaders: object;
  services: { consent: ConsentGate };
}

const loaders = new WeakMap<object, DataLoader<ConsentCheck, ConsentDecision, string>>();

/** The decision for one check, batched with the rest of the request's (one internal call per request). */
export function consentDecision(ctx: ConsentCtx, info: GraphQLResolveInfo, check: ConsentCheck): Promise<ConsentDecision> {
  let loader = loaders.get(ctx.loaders);
  if (!loader) {
    const asker: ConsentAsker = {
      userId: ctx.caller.userId ?? '',
      issuer: ctx.caller.issuer ?? null,
      clientId: ctx.caller.clientId ?? null,
      client: ctx.caller.client,
      requestId: ctx.requestId,
      operationHash: createHash('sha256')
        .update(info.operation.loc?.source.body ?? '')
        .digest('hex'),
    };
    loader = new DataLoader((keys) => ctx.services.consent.decide(asker, keys), { cacheKeyFn: (k) => `${k.accountId}|${k.coordinate}` });
    loaders.set(ctx.loaders, loader);
  }
  return loader.load(check);
}

/** Throws CONSENT_REQUIRED (the field is null, the rest answers) unless the user's consent allows `check`. */
export async function requireConsent(ctx: ConsentCtx, info: GraphQLResolveInfo, check: ConsentCheck): Promise<void> {
  const d = await consentDecision(ctx, info, check);
  if (!d.allowed) throw consentRequired(d.institutionId ?? 'unknown', d.scope, check.coordinate);
}

/**
 * A movement from `accountId`: the `CONSENT_REQUIRED` user error when the user's consent does not
 * allow it (nothing moves), or null (also for an account that is not the user's: the movement's
 * own ACCOUNT_NOT_FOUND answers it).
 */
export async function movementConsentError(ctx: ConsentCtx, info: GraphQLResolveInfo, accountId: string, coordinate: ConsentCoordinate, field: string[]) {
  if (typeof accountId !== 'string' || accountId.length < 1 || accountId.length > 64) return null;
  const d = await consentDecision(ctx, info, { accountId, coordinate });
  if (d.allowed || d.institutionId === null) return null;
  return {
    code: 'CONSENT_REQUIRED' as const,
    field,
    message: `Moving money from this account needs your active MONEY_MOVEMENT consent for institution ${d.institutionId} (Mutation.grantConsent).`,
  };
}
