/**
 * The gateway's per-operation context and the one authentication step both transports share:
 * who is calling (from the bearer token: the HTTP Authorization header, or the WebSocket
 * connection_init payload), a request id, and which transport carried the operation.
 */
import { randomUUID } from 'node:crypto';
import type { QueryPlan, SubscriptionNode } from '@apollo/query-planner';
import type { DocumentNode } from 'graphql';
import { decodeJwt } from 'jose';
import { ANONYMOUS, bearerToken, createTokenVerifier, TokenError, type Caller, type TokenVerifierConfig, type VerifiedToken } from '../lib/auth.js';
import { unauthenticated } from '../lib/errors.js';

export interface GatewayContext {
  caller: Caller;
  requestId: string;
  transport: 'http' | 'ws';
  /** The client's network address (the socket's peer). */
  address?: string;
  /** Whether the fence has decided this operation yet (fence/adapters/gateway-plugin.ts). */
  fenced?: { done: boolean };
  /**
   * WebSocket only: where the pipeline leaves an accepted subscription (its checked plan and
   * coerced variables) for the bridge. A holder object, since Apollo shallow-clones the context.
   */
  accepted?: { subscription?: PlannedSubscription };
}

export interface PlannedSubscription {
  plan: QueryPlan & { node: SubscriptionNode };
  /** The variables, coerced against the API schema. */
  variables: Record<string, unknown>;
  document: DocumentNode;
  operationName: string | undefined;
}

const VERIFIED_TOKENS_MAX = 10_000;

/** Authenticates callers from bearer tokens, for one gateway (one token verifier configuration). */
export interface Authenticator {
  /**
   * The caller a bearer token names (`authorization` is `Bearer <token>`, or absent: anonymous).
   * A token that is present and invalid is refused with UNAUTHENTICATED, never taken as anonymous.
   */
  authenticate(authorization: string | undefined, clientName: string | undefined): Promise<Caller>;
}

/**
 * The configured token verifier (lib/auth.ts createTokenVerifier: an HS256 secret, or an issuer's
 * public key or JWKS), remembering success: a client sends the same bearer token on every request
 * until it expires, and a verification (HMAC or signature, claims) costs more than the rest of the
 * context. The verdict on a given token string can only change with time, so a remembered token
 * is accepted only while `Date.now()` is before its `exp` (jose's own rule, without leeway);
 * failures are never remembered. Bounded: the oldest entries go first.
 */
export function createAuthenticator(verifier: TokenVerifierConfig): Authenticator {
  const verifyToken = createTokenVerifier(verifier);
  const verified = new Map<string, VerifiedToken & { expiresAtMs: number }>();
  async function verify(token: string): Promise<VerifiedToken> {
    const hit = verified.get(token);
    if (hit && Date.now() < hit.expiresAtMs) return hit;
    if (hit) verified.delete(token);
    const who = await verifyToken(token);
    const exp = decodeJwt(token).exp;
    if (typeof exp === 'number') {
      if (verified.size >= VERIFIED_TOKENS_MAX) verified.delete(verified.keys().next().value!);
      verified.set(token, { ...who, expiresAtMs: exp * 1000 });
    }
    return who;
  }
  return {
    async authenticate(authorization, clientName) {
      const client = clientName ? clientName.slice(0, 100) : null;
      try {
        const token = bearerToken(authorization);
        if (!token) return { ...ANONYMOUS, client };
        const { userId, purpose, institutionId, issuer, clientId } = await verify(token);
        // A bank's oversight credential is no user: it speaks for its institution only.
        if (purpose === 'oversight') return { userId: null, purpose, client, institutionId: institutionId ?? null, issuer, clientId };
        return { userId, purpose, client, issuer, clientId };
      } catch (err) {
        throw unauthenticated(err instanceof TokenError ? `Authentication failed: ${err.message}.` : 'Authentication failed.');
      }
    },
  };
}

export function newRequestId(given: string | undefined): string {
  return given && /^[A-Za-z0-9._-]{8,64}$/.test(given) ? given : randomUUID();
}
