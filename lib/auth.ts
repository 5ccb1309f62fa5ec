/**
 * Client authentication: JWTs (jose) carrying `sub` (user id) and `purpose`, verified by the
 * gateway with one of two kinds of key (TokenVerifierConfig), never both:
 *
 * - an HS256 secret (PAYGRAPH_JWT_SECRET; in development this install's generated secret): the
 *   one who verifies can also mint, which is what the dev stack and `npm run token` rely on;
 * - an issuer's public key(s), EdDSA (Ed25519) or RS256: a PEM (PAYGRAPH_JWT_PUBLIC_KEY(_FILE))
 *   or a JWKS URL (PAYGRAPH_JWT_JWKS_URL). Such a gateway holds no minting secret, and it refuses
 *   HS256 tokens: nothing in its configuration can sign a token it would accept.
 *
 * The algorithms are an explicit allow-list per kind (HS256 for a secret; EdDSA and RS256 for
 * keys; never `none`), and every token must name the configured issuer (and audience, if set).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, SignJWT, jwtVerify, errors as joseErrors, type JWTVerifyOptions } from 'jose';

/**
 * Why a caller is calling, as its token states it. What each purpose may receive is the data-use
 * fence's decision (fence/policy.ts); here a purpose is only a value a token carries.
 */
export type Purpose = 'payments' | 'advertising' | 'oversight';
export const PURPOSES: readonly Purpose[] = ['payments', 'advertising', 'oversight'];

export function isPurpose(value: unknown): value is Purpose {
  return (PURPOSES as readonly unknown[]).includes(value);
}

/** Who is calling, as the gateway established it and signed it to the subgraphs. */
export interface Caller {
  userId: string | null;
  purpose: Purpose | null;
  /** Client name from the `apollographql-client-name` header, for the audit trail. */
  client: string | null;
  /**
   * A bank's oversight credential only (purpose `oversight`): the institution it speaks for, from
   * the token's `institution` claim. Such a caller is no user (userId null).
   */
  institutionId?: string | null;
  /**
   * The verified identity beside `userId` and `purpose`: the issuer that signed the token (`iss`)
   * and the credential it was issued to (`client_id`, RFC 9068, or else OpenID's `azp`), for the
   * audit trail. Null (or unset) for an anonymous caller, and `clientId` for a token naming none.
   * Unlike `client`, nothing the caller merely declares ever sets them.
   */
  issuer?: string | null;
  clientId?: string | null;
}

export const ANONYMOUS: Caller = Object.freeze({ userId: null, purpose: null, client: null });

/** The issuer a token must name unless PAYGRAPH_JWT_ISSUER says otherwise. */
export const DEFAULT_ISSUER = 'paygraph';

/** The algorithms an issuer's key may sign with; HS256 belongs to a secret only, and `none` to nobody. */
export type KeyAlgorithm = 'EdDSA' | 'RS256';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['EdDSA', 'RS256'];

/** The claims every token must carry besides `sub`, `purpose` and `exp`. */
export interface TokenClaimChecks {
  /** `iss` must equal this (PAYGRAPH_JWT_ISSUER, default 'paygraph'). */
  issuer: string;
  /** When set, `aud` must contain this (PAYGRAPH_JWT_AUDIENCE). */
  audience?: string;
}

/** What a minted token may carry besides its claim checks: the credential's client id (`client_id`). */
export interface TokenMintOptions extends Partial<TokenClaimChecks> {
  clientId?: string;
}

/** The client ids of the development stack's own credentials (the tokens it mints for itself). */
export const DEV_CLIENT_IDS = { web: 'paygraph-web', cli: 'paygraph-cli' } as const;

/** A credential's client id as a token may carry it: 1 to 100 printable ASCII characters. */
const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,100}$/;

/** How the gateway verifies client tokens (lib/config.ts reads it from the environment). */
export type TokenVerifierConfig =
  /** HS256 with a shared secret: whoever holds it can mint (the dev stack's default). */
  | ({ kind: 'secret'; secret: string } & TokenClaimChecks)
  /**
   * An issuer's public key(s), SPKI PEM (several for a rotation): Ed25519 keys verify EdDSA,
   * RSA keys (2048 bits or more) RS256, each only its own algorithm.
   */
  | ({ kind: 'public-key'; publicKeys: readonly string[]; algorithms?: readonly KeyAlgorithm[] } & TokenClaimChecks)
  /** An issuer's JWKS (fetched and cached by jose createRemoteJWKSet; keys chosen by `kid`). */
  | ({ kind: 'jwks'; jwksUrl: string; algorithms?: readonly KeyAlgorithm[] } & TokenClaimChecks);

/** The HS256 verifier of a secret, with the default issuer (tests, benchmarks, the dev stack). */
export function secretVerifier(secret: string, checks: Partial<TokenClaimChecks> = {}): TokenVerifierConfig {
  return { kind: 'secret', secret, issuer: checks.issuer ?? DEFAULT_ISSUER, ...(checks.audience ? { audience: checks.audience } : {}) };
}

/** Whether a gateway with this configuration could mint the tokens it accepts (only with a secret). */
export function verifierHoldsMintingSecret(config: TokenVerifierConfig): boolean {
  return config.kind === 'secret';
}

/** What signs a token: an HS256 secret (a string), or an issuer's private key (development minting). */
export type TokenSigningKey = string | { alg: KeyAlgorithm; privateKey: KeyObject; kid?: string };

function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** The algorithm an asymmetric key signs or verifies with; throws for any other key type. */
export function algorithmOfKey(key: KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`an RSA key must have at least 2048 bits, this one has ${bits}`);
    return 'RS256';
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? key.type}: use Ed25519 (EdDSA) or RSA (RS256)`);
}

/** The SPKI PEM blocks of a text holding one or more public keys (throws when there is none). */
export function publicKeyPems(text: string): string[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (pems.length === 0) throw new Error('expected one or more SPKI PEM public keys (-----BEGIN PUBLIC KEY-----)');
  return pems;
}

export async function signToken(
  key: TokenSigningKey,
  userId: string,
  purpose: Purpose,
  expiresIn: string | number = '12h',
  checks: TokenMintOptions = {},
): Promise<string> {
  const jwt = new SignJWT({ purpose, ...(checks.clientId ? { client_id: checks.clientId } : {}) })
    .setSubject(userId)
    .setIssuer(checks.issuer ?? DEFAULT_ISSUER)
    .setIssuedAt()
    .setExpirationTime(expiresIn);
  if (checks.audience) jwt.setAudience(checks.audience);
  if (typeof key === 'string') return jwt.setProtectedHeader({ alg: 'HS256' }).sign(secretKey(key));
  return jwt.setProtectedHeader({ alg: key.alg, ...(key.kid ? { kid: key.kid } : {}) }).sign(key.privateKey);
}

/**
 * A bank's oversight credential: purpose `oversight`, an `institution` claim, and a subject naming
 * the institution (never a user). What it may read is the fence's decision (fence/policy.ts).
 */
export async function signInstitutionToken(
  key: TokenSigningKey,
  institutionId: string,
  expiresIn: string | number = '12h',
  checks: TokenMintOptions = {},
): Promise<string> {
  const jwt = new SignJWT({ purpose: 'oversight', institution: institutionId, ...(checks.clientId ? { client_id: checks.clientId } : {}) })
    .setSubject(`institution:${institutionId}`)
    .setIssuer(checks.issuer ?? DEFAULT_ISSUER)
    .setIssuedAt()
    .setExpirationTime(expiresIn);
  if (checks.audience) jwt.setAudience(checks.audience);
  if (typeof key === 'string') return jwt.setProtectedHeader({ alg: 'HS256' }).sign(secretKey(key));
  return jwt.setProtectedHeader({ alg: key.alg, ...(key.kid ? { kid: key.kid } : {}) }).sign(key.privateKey);
}

export class TokenError extends Error {}

export interface VerifiedToken {
  userId: string;
  purpose: Purpose;
  /** Set for (and only for) an `oversight` token: the institution it speaks for. */
  institutionId?: string;
  /** `iss`, as verified against the configured issuer. */
  issuer: string;
  /** `client_id` (RFC 9068 §2.2), else `azp` (OpenID Connect): the credential's client; null when the token names none. */
  clientId: string | null;
}

/** Verifies bearer tokens; throws TokenError with a client-safe message. */
export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

function claimsOf(payload: Record<string, unknown>): VerifiedToken {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new TokenError('token has no subject');
  if (!isPurpose(payload.purpose)) throw new TokenError('token purpose must be "payments", "advertising" or "oversight"');
  if (typeof payload.exp !== 'number') throw new TokenError('token has no expiry');
  // jose has checked `iss` against the configured issuer already; this only gives it a type.
  if (typeof payload.iss !== 'string') throw new TokenError('token has no issuer');
  const identity = { issuer: payload.iss, clientId: clientIdOf(payload) };
  if (payload.purpose === 'oversight') {
    const institution = payload.institution;
    if (typeof institution !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(institution)) throw new TokenError('an oversight token must name its institution');
    return { userId: payload.sub, purpose: payload.purpose, institutionId: institution, ...identity };
  }
  return { userId: payload.sub, purpose: payload.purpose, ...identity };
}

/**
 * The credential's client id: `client_id` (RFC 9068, OAuth access tokens), else `azp` (OpenID
 * Connect's authorized party). One that is present but malformed refuses the token rather than
 * being dropped: the audit would otherwise name no credential for a token that claimed one.
 */
function clientIdOf(payload: Record<string, unknown>): string | null {
  const value = payload.client_id ?? payload.azp;
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !CLIENT_ID_PATTERN.test(value)) throw new TokenError('token client_id must be 1 to 100 printable ASCII characters');
  return value;
}

function tokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof joseErrors.JWTExpired) return new TokenError('token expired');
  return new TokenError('invalid token');
}

/**
 * A verifier for one configuration, with its keys imported (and its JWKS set created) once.
 * Throws (a configuration error, not a TokenError) when the configuration is unusable.
 */
export function createTokenVerifier(config: TokenVerifierConfig): TokenVerifier {
  const options = (algorithms: readonly string[]): JWTVerifyOptions => ({
    algorithms: [...algorithms],
    issuer: config.issuer,
    ...(config.audience ? { audience: config.audience } : {}),
  });
  const allowed = (algorithms: readonly KeyAlgorithm[] | undefined): readonly KeyAlgorithm[] => {
    const list = algorithms ?? KEY_ALGORITHMS;
    for (const alg of list)
      if (!KEY_ALGORITHMS.includes(alg)) throw new Error(`token algorithm ${String(alg)} is not allowed for a key (only ${KEY_ALGORITHMS.join(', ')})`);
    if (list.length === 0) throw new Error('no token algorithm allowed');
    return list;
  };
  const run = (verify: (token: string) => Promise<Record<string, unknown>>): TokenVerifier => {
    return async (token) => {
      try {
        return claimsOf(await verify(token));
      } catch (err) {
        throw tokenError(err);
      }
    };
  };
  switch (config.kind) {
    case 'secret': {
      if (config.secret.length === 0) throw new Error('the token secret is empty');
      const key = secretKey(config.secret);
      return run(async (token) => (await jwtVerify(token, key, options(['HS256']))).payload);
    }
    case 'public-key': {
      const algorithms = allowed(config.algorithms);
      const keys = config.publicKeys.map((pem) => {
        const key = createPublicKey(pem);
        return { key, alg: algorithmOfKey(key) };
      });
      if (keys.length === 0) throw new Error('no public key to verify tokens with');
      const usable = keys.filter((k) => algorithms.includes(k.alg));
      if (usable.length === 0) throw new Error(`no public key for the allowed token algorithms ${algorithms.join(', ')}`);
      return run(async (token) => {
        // Only the keys of the algorithm the token names (and that is allowed): an HS256 or `none`
        // token has none, and is refused before any key sees it.
        const { alg } = decodeProtectedHeader(token);
        const candidates = usable.filter((k) => k.alg === alg);
        if (candidates.length === 0) throw new TokenError('invalid token');
        let last: unknown;
        for (const { key, alg: keyAlg } of candidates) {
          try {
            return (await jwtVerify(token, key, options([keyAlg]))).payload;
          } catch (err) {
            // Another key of the same algorithm may have signed it (a rotation); any other failure is final.
            if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) throw err;
            last = err;
          }
        }
        throw last;
      });
    }
    case 'jwks': {
      const algorithms = allowed(config.algorithms);
      const jwks = createRemoteJWKSet(new URL(config.jwksUrl));
      return run(async (token) => (await jwtVerify(token, jwks, options(algorithms))).payload);
    }
  }
}

/** Verify one bearer token (a secret string: HS256 with the default issuer); prefer createTokenVerifier for many. */
export async function verifyToken(config: TokenVerifierConfig | string, token: string): Promise<VerifiedToken> {
  return createTokenVerifier(typeof config === 'string' ? secretVerifier(config) : config)(token);
}

/** Parse `Authorization: Bearer <jwt>`; returns null when the header is absent. */
export function bearerToken(header: string | undefined | null): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new TokenError('Authorization header must be "Bearer <token>"');
  return m[1]!;
}
