/**
 * Client authentication: HS256 JWTs (jose) carrying `sub` (user id) and `purpose`.
 */
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

/**
 * Why a caller is calling, as its token states it. What each purpose may receive is the data-use
 * fence's decision (fence/policy.ts); here a purpose is only a value a token carries.
 */
export type Purpose = 'payments' | 'advertising';
export const PURPOSES: readonly Purpose[] = ['payments', 'advertising'];

export function isPurpose(value: unknown): value is Purpose {
  return (PURPOSES as readonly unknown[]).includes(value);
}

/** Who is calling, as the gateway established it and signed it to the subgraphs. */
export interface Caller {
  userId: string | null;
  purpose: Purpose | null;
  /** Client name from the `apollographql-client-name` header, for the audit trail. */
  client: string | null;
}

export const ANONYMOUS: Caller = Object.freeze({ userId: null, purpose: null, client: null });

const ISSUER = 'paygraph';

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function signToken(secret: string, userId: string, purpose: Purpose, expiresIn: string | number = '12h'): Promise<string> {
  return new SignJWT({ purpose })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key(secret));
}

export class TokenError extends Error {}

/** Verify a bearer token; throws TokenError with a client-safe message. */
export async function verifyToken(secret: string, token: string): Promise<{ userId: string; purpose: Purpose }> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { algorithms: ['HS256'], issuer: ISSUER });
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new TokenError('token has no subject');
    if (!isPurpose(payload.purpose)) throw new TokenError('token purpose must be "payments" or "advertising"');
    if (typeof payload.exp !== 'number') throw new TokenError('token has no expiry');
    return { userId: payload.sub, purpose: payload.purpose };
  } catch (err) {
    if (err instanceof TokenError) throw err;
    if (err instanceof joseErrors.JWTExpired) throw new TokenError('token expired');
    throw new TokenError('invalid token');
  }
}

/** Parse `Authorization: Bearer <jwt>`; returns null when the header is absent. */
export function bearerToken(header: string | undefined | null): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new TokenError('Authorization header must be "Bearer <token>"');
  return m[1]!;
}
