/**
 * Signing and verifying every request between paygraph's services (gateway -> subgraph GraphQL,
 * graphql-ws connection_init, internal calls): the keys, the signature and the replay check.
 *
 * The gateway signs every subgraph request: HMAC-SHA256 over a version tag, a timestamp, a nonce,
 * the caller header and the exact body bytes, with a key per subgraph derived from the gateway
 * secret. A subgraph holds only its own key, so one subgraph cannot forge a request to another.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Caller } from '../auth.js';
import { isPurpose } from '../auth.js';
import type { SubgraphName } from '../config.js';

export const SIGNATURE_HEADER = 'x-paygraph-signature';
export const TIMESTAMP_HEADER = 'x-paygraph-timestamp';
export const NONCE_HEADER = 'x-paygraph-nonce';
export const CALLER_HEADER = 'x-paygraph-caller';
export const REQUEST_ID_HEADER = 'x-request-id';

/** How far a signature's timestamp may be from the subgraph's clock. */
export const MAX_SKEW_MS = 60_000;

/** The key the gateway signs a subgraph's GraphQL requests with (that subgraph holds only its own). */
export function deriveSubgraphKey(gatewaySecret: string, subgraph: string): Buffer {
  return createHmac('sha256', gatewaySecret).update(`paygraph/subgraph-key/v1/${subgraph}`).digest();
}

/** The key a subgraph's internal routes verify (internal-client.ts signs with it). */
export function deriveInternalKey(gatewaySecret: string, subgraph: SubgraphName): Buffer {
  return deriveSubgraphKey(gatewaySecret, `${subgraph}/internal`);
}

function mac(key: Buffer, timestamp: string, nonce: string, caller: string, body: string | Buffer): string {
  return createHmac('sha256', key).update(`v1\n${timestamp}\n${nonce}\n${caller}\n`).update(body).digest('base64url');
}

export function encodeCaller(caller: Caller): string {
  return Buffer.from(JSON.stringify({ u: caller.userId, p: caller.purpose, c: caller.client })).toString('base64url');
}

function decodeCaller(value: string): Caller | null {
  try {
    const raw = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as { u?: unknown; p?: unknown; c?: unknown };
    const userId = typeof raw.u === 'string' ? raw.u : null;
    const purpose = isPurpose(raw.p) ? raw.p : null;
    const client = typeof raw.c === 'string' ? raw.c : null;
    return { userId, purpose, client };
  } catch {
    return null;
  }
}

/** Headers to add to a subgraph request whose body is exactly `body`. */
export function signRequest(key: Buffer, caller: Caller, body: string | Buffer, now = Date.now()): Record<string, string> {
  return signRaw(key, encodeCaller(caller), body, now);
}

/** Like signRequest, for a caller header already encoded. */
export function signRaw(key: Buffer, callerHeader: string, body: string | Buffer, now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  const nonce = randomBytes(16).toString('base64url');
  return {
    [TIMESTAMP_HEADER]: timestamp,
    [NONCE_HEADER]: nonce,
    [CALLER_HEADER]: callerHeader,
    [SIGNATURE_HEADER]: mac(key, timestamp, nonce, callerHeader, body),
  };
}

export type VerifyResult = { ok: true; caller: Caller } | { ok: false; reason: string };

/**
 * Verifies signatures and remembers nonces for the skew window so that a captured request cannot
 * be replayed. A signature is accepted while its timestamp is within MAX_SKEW_MS of the clock, so
 * a nonce must be remembered for 2 x MAX_SKEW_MS after it was first seen; nonces are kept in
 * arrival order (a Map iterates in insertion order) and expired from the front, O(1) amortised
 * per request (a full scan per request grew with the request rate times two minutes).
 */
/** A nonce store shared by every process of a service (lib/redis.ts connectNonceStore). */
export interface SharedNonces {
  claim(scope: string, nonce: string, ttlMs: number): Promise<boolean>;
}

export class SignatureVerifier {
  /** nonce -> when it was first seen (this process's clock). */
  private readonly seen = new Map<string, number>();

  /**
   * `shared` (several processes of one service, REDIS_URL): `check` also claims each nonce there,
   * under `scope`, so a request accepted by one process is refused as a replay by the others.
   */
  constructor(
    private readonly key: Buffer,
    private readonly shared?: { nonces: SharedNonces; scope: string; onUnavailable?: (err: unknown) => void },
  ) {}

  /**
   * `verify`, plus the shared replay check when configured. If the shared store is unreachable
   * the request is judged on this process's own replay check (and `onUnavailable` is told):
   * a Redis outage must not stop the payments zone, and the local check still holds.
   */
  async check(headers: Record<string, string | undefined>, body: string | Buffer, now = Date.now()): Promise<VerifyResult> {
    const verdict = this.verify(headers, body, now);
    if (!verdict.ok || !this.shared) return verdict;
    try {
      const first = await this.shared.nonces.claim(this.shared.scope, headers[NONCE_HEADER]!, MAX_SKEW_MS * 2);
      return first ? verdict : { ok: false, reason: 'replayed signature' };
    } catch (err) {
      this.shared.onUnavailable?.(err);
      return verdict;
    }
  }

  verify(headers: Record<string, string | undefined>, body: string | Buffer, now = Date.now()): VerifyResult {
    const timestamp = headers[TIMESTAMP_HEADER];
    const nonce = headers[NONCE_HEADER];
    const callerHeader = headers[CALLER_HEADER];
    const signature = headers[SIGNATURE_HEADER];
    if (!timestamp || !nonce || !callerHeader || !signature) return { ok: false, reason: 'unsigned request' };
    const ts = Number(timestamp);
    if (!/^[0-9]{1,16}$/.test(timestamp) || Math.abs(now - ts) > MAX_SKEW_MS) return { ok: false, reason: 'stale signature' };
    const expected = Buffer.from(mac(this.key, timestamp, nonce, callerHeader, body));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'bad signature' };
    this.prune(now);
    if (this.seen.has(nonce)) return { ok: false, reason: 'replayed signature' };
    this.seen.set(nonce, now);
    const caller = decodeCaller(callerHeader);
    if (!caller) return { ok: false, reason: 'bad caller header' };
    return { ok: true, caller };
  }

  private prune(now: number): void {
    for (const [nonce, firstSeen] of this.seen) {
      // Arrival order: the first entry still fresh ends the sweep. (A clock stepping backwards
      // only keeps entries longer.)
      if (now - firstSeen <= MAX_SKEW_MS * 2) return;
      this.seen.delete(nonce);
    }
  }
}

/**
 * The bytes the gateway signs (with the subgraph's key) in the connection_init payload of a
 * graphql-ws connection to a subgraph; `resumeAfter` and `since` are covered by the signature.
 */
export function wsConnectionInitBody(resumeAfter: number | null, since: string | null = null): string {
  return `graphql-ws/connection_init\nresumeAfter=${resumeAfter ?? ''}\nsince=${since ?? ''}`;
}
