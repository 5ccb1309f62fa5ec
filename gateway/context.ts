/** The gateway's per-request context: who is calling (from the JWT) and a request id. */
import { randomUUID } from 'node:crypto';
import { ANONYMOUS, bearerToken, TokenError, verifyToken, type Caller } from '../lib/auth.js';
import { unauthenticated } from '../lib/errors.js';

export interface GatewayContext {
  caller: Caller;
  requestId: string;
}

export async function callerFromHeaders(jwtSecret: string, authorization: string | undefined, clientName: string | undefined): Promise<Caller> {
  const client = clientName ? clientName.slice(0, 100) : null;
  let token: string | null;
  try {
    token = bearerToken(authorization);
    if (!token) return { ...ANONYMOUS, client };
    const { userId, purpose } = await verifyToken(jwtSecret, token);
    return { userId, purpose, client };
  } catch (err) {
    throw unauthenticated(err instanceof TokenError ? `Authentication failed: ${err.message}.` : 'Authentication failed.');
  }
}

export function newRequestId(given: string | undefined): string {
  return given && /^[A-Za-z0-9._-]{8,64}$/.test(given) ? given : randomUUID();
}
