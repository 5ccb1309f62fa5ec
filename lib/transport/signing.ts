/**
 * Signing and verifying every request between paygraph's services: gateway -> subgraph GraphQL
 * (HTTP), the gateway's graphql-ws connection_init to alerts, and internal calls
 * (internal-client.ts). Each is signed with the SENDING service's own Ed25519 private key
 * (keys.ts) and verified against the public keys of the services the endpoint accepts, so no
 * service can act as another: the ads process holds only its own private key, and no
 * payments-zone endpoint accepts ads.
 *
 * The format is the standard one: an RFC 9421 HTTP Message Signature with an RFC 9530
 * Content-Digest, made and checked with the npm package `http-message-signatures`, chosen over a
 * hand-written profile because it signs Ed25519, covers derived components and any header, and
 * builds the signature base (RFC 9421 section 2.5) and the Structured Fields of Signature-Input
 * itself. (It was written against a late draft; for the components and parameters used here
 * the signature base is the RFC's.) What it leaves to its user is done here: the digest check,
 * the freshness window, the nonce memory and which keys an endpoint accepts. It costs about
 * 60 us to sign and 90 us to verify a request (docs/performance.md). The profile, checked on
 * receipt:
 *
 *   Content-Digest:   sha-256=:<base64 SHA-256 of the exact body bytes>:            (RFC 9530)
 *   X-Paygraph-Caller: <the caller: user, purpose, client, issuer, client id; base64url JSON>
 *   X-Paygraph-Target: <the service the request is FOR: accounts, payments, ...>
 *   Signature-Input:  paygraph=("@method" "@path" "content-digest" "x-paygraph-caller"
 *                     "x-paygraph-target");created=<unix s>;nonce="<128 random bits>";
 *                     keyid="<signing service>";alg="ed25519";tag="paygraph"
 *   Signature:        paygraph=:<base64 Ed25519 signature over the signature base>:
 *
 * - `keyid` names the signing service; the verifier looks its public key up among the services
 *   the endpoint accepts, and only there. A keyid naming another paygraph service is refused
 *   403 (that service may not call this endpoint), anything else that does not verify 401. The
 *   403 is decided on the keyid alone: an endpoint's verifier holds only the keys of the services
 *   it accepts, and needs no other to refuse one.
 * - The target is covered, so a request signed by the gateway FOR ads, captured there, is refused
 *   by payments; `@method` and `@path` are covered, so a signature for one route is refused on
 *   another. (The query string is not covered: subgraphs serve signed GraphQL by POST only.)
 * - `created` must be within MAX_SKEW_MS of the verifier's clock, and each nonce is accepted once
 *   (replay.ts; shared through Redis by a service's processes).
 * - graphql-ws has no HTTP request per message. One upstream socket carries the subscriptions of
 *   many callers (the gateway multiplexes them), so two signatures are made, both over a fixed
 *   method and path (GET /graphql: WS_SIGNED_METHOD, WS_SIGNED_PATH) with the same fields
 *   (lower-case header names as keys): the connection_init payload proves the socket is the
 *   gateway's (content wsConnectionInitBody(), caller: nobody), and each `subscribe` message
 *   carries a grant in `extensions.paygraphGrant` (content wsSubscribeBody: the operation, its
 *   variables and where to resume) that binds the caller to that one subscription. The contents
 *   start differently, so neither signature is accepted as the other.
 * - The W3C `traceparent` (and `tracestate`) a traced request carries (lib/tracing.ts) is NOT
 *   covered, on purpose: it decides nothing (no fence check, caller or route reads it; it only
 *   names the parent of the receiver's span), and it is absent whenever tracing is off (the
 *   default), so covering it would need a second profile with other required components. Whoever
 *   could rewrite it in transit could only mis-parent a span; the request itself still verifies
 *   or is refused exactly as before (test/gateway/tracing.test.ts).
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { createSigner, createVerifier, httpbis, type VerifyingKey } from 'http-message-signatures';
import type { Caller } from '../auth.js';
import { ANONYMOUS, isPurpose } from '../auth.js';
import { isServiceName, type ServiceName } from '../config.js';
import type { Signer } from './keys.js';
import type { ReplayGuard } from './replay.js';

export const SIGNATURE_HEADER = 'signature';
export const SIGNATURE_INPUT_HEADER = 'signature-input';
export const CONTENT_DIGEST_HEADER = 'content-digest';
export const CALLER_HEADER = 'x-paygraph-caller';
export const TARGET_HEADER = 'x-paygraph-target';
export const REQUEST_ID_HEADER = 'x-request-id';

/** The signature's label (in Signature and Signature-Input) and its `tag` parameter. */
export const SIGNATURE_LABEL = 'paygraph';
export const SIGNATURE_TAG = 'paygraph';
export const SIGNATURE_ALG = 'ed25519';
/** What every signature covers, in this order (RFC 9421 component identifiers). */
export const COVERED_COMPONENTS = ['@method', '@path', CONTENT_DIGEST_HEADER, CALLER_HEADER, TARGET_HEADER] as const;
/** Its parameters, in this order. */
export const SIGNATURE_PARAMETERS = ['created', 'nonce', 'keyid', 'alg', 'tag'] as const;
/** Every field a signed message carries (HTTP headers, or graphql-ws connection_init payload keys). */
export const SIGNED_FIELDS = [SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER, CONTENT_DIGEST_HEADER, CALLER_HEADER, TARGET_HEADER] as const;

/** How far a signature's `created` time may be from the verifier's clock. */
export const MAX_SKEW_MS = 60_000;
/** How long a nonce is remembered (replay.ts): the whole window in which its signature could be accepted. */
export const NONCE_MEMORY_MS = 2 * MAX_SKEW_MS;

/** The method and path a graphql-ws connection_init is signed over (it is no HTTP request of its own). */
export const WS_SIGNED_METHOD = 'GET';
export const WS_SIGNED_PATH = '/graphql';

// Only the path of this URL is ever signed (`@path`): the host is a placeholder.
const urlOf = (path: string) => `http://paygraph.invalid${path}`;

/** RFC 9530 Content-Digest of `body`: `sha-256=:<base64>:`. */
export function contentDigest(body: string | Buffer): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

export function encodeCaller(caller: Caller): string {
  return Buffer.from(
    JSON.stringify({
      u: caller.userId,
      p: caller.purpose,
      c: caller.client,
      ...(caller.institutionId ? { i: caller.institutionId } : {}),
      // The verified issuer and credential client id: the subgraphs' own audit records name them too.
      ...(caller.issuer ? { s: caller.issuer } : {}),
      ...(caller.clientId ? { a: caller.clientId } : {}),
    }),
  ).toString('base64url');
}

function decodeCaller(value: string): Caller | null {
  try {
    const raw = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as {
      u?: unknown;
      p?: unknown;
      c?: unknown;
      i?: unknown;
      s?: unknown;
      a?: unknown;
    };
    const userId = typeof raw.u === 'string' ? raw.u : null;
    const purpose = isPurpose(raw.p) ? raw.p : null;
    const client = typeof raw.c === 'string' ? raw.c : null;
    const identity = { issuer: typeof raw.s === 'string' ? raw.s : null, clientId: typeof raw.a === 'string' ? raw.a : null };
    // An institution is carried only for an oversight caller (lib/auth.ts Caller.institutionId).
    if (purpose === 'oversight') return { userId: null, purpose, client, institutionId: typeof raw.i === 'string' ? raw.i : null, ...identity };
    return { userId, purpose, client, ...identity };
  } catch {
    return null;
  }
}

/** What is signed: the request as the receiving service will see it. */
export interface MessageToSign {
  method: string;
  /** The URL path, without the query string (e.g. /graphql, /internal/audit). */
  path: string;
  /** The service the message is for. */
  target: ServiceName;
  /** The caller header (encodeCaller). */
  caller: string;
  /** The exact body bytes (for graphql-ws: wsConnectionInitBody). */
  body: string | Buffer;
}

/**
 * The fields (header name -> value) that sign `message` as `signer`: Content-Digest, the caller
 * and target headers, Signature-Input and Signature. Each call draws a fresh nonce.
 */
export async function signMessage(signer: Signer, message: MessageToSign, now = Date.now()): Promise<Record<string, string>> {
  const headers: Record<string, string> = {
    [CONTENT_DIGEST_HEADER]: contentDigest(message.body),
    [CALLER_HEADER]: message.caller,
    [TARGET_HEADER]: message.target,
  };
  const signed = await httpbis.signMessage(
    {
      key: createSigner(signer.self, SIGNATURE_ALG, signer.service),
      name: SIGNATURE_LABEL,
      fields: [...COVERED_COMPONENTS],
      params: [...SIGNATURE_PARAMETERS],
      paramValues: { created: new Date(now), nonce: randomBytes(16).toString('base64url'), tag: SIGNATURE_TAG },
    },
    { method: message.method, url: urlOf(message.path), headers },
  );
  // The library adds `Signature` and `Signature-Input`; HTTP field names are case-insensitive,
  // and the graphql-ws payload keys must be exact: every field is returned in lower case.
  return Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v]));
}

/** The content a graphql-ws connection_init is signed over: the socket carries no caller of its own. */
export function wsConnectionInitBody(): string {
  return 'graphql-ws/connection_init/v2';
}

/** The signature fields of a graphql-ws connection_init from `signer` to `target`: the socket's, for no caller (ANONYMOUS). */
export function signConnectionInit(signer: Signer, target: ServiceName, now = Date.now()): Promise<Record<string, string>> {
  return signMessage(signer, { method: WS_SIGNED_METHOD, path: WS_SIGNED_PATH, target, caller: encodeCaller(ANONYMOUS), body: wsConnectionInitBody() }, now);
}

/** What one subscription on a multiplexed socket is granted: the operation, and where its stream starts. */
export interface SubscribeGrant {
  query: string;
  operationName: string | null;
  variables: Readonly<Record<string, unknown>>;
  /** The alert sequence after which to resume (the bridge's reconnection), or null. */
  resumeAfter: number | null;
  /** When the client subscribed at the gateway (ISO-8601), or null. */
  since: string | null;
}

/** The `extensions` key of a subscribe message that carries its grant. */
export const GRANT_EXTENSION = 'paygraphGrant';
/** `extensions.reason` of the FORBIDDEN error for a refused grant (the gateway may sign a fresh one and retry). */
export const GRANT_REFUSED = 'SUBSCRIPTION_GRANT_REFUSED';

/** The content a subscription grant is signed over (JSON: the receiver rebuilds it from the message). */
export function wsSubscribeBody(g: SubscribeGrant): string {
  return `graphql-ws/subscribe/v1\n${JSON.stringify([g.query, g.operationName, g.variables, g.resumeAfter, g.since])}`;
}

/** The signature fields granting `caller` the subscription `grant` on a socket from `signer` to `target`. */
export function signSubscribeGrant(
  signer: Signer,
  target: ServiceName,
  caller: Caller,
  grant: SubscribeGrant,
  now = Date.now(),
): Promise<Record<string, string>> {
  return signMessage(signer, { method: WS_SIGNED_METHOD, path: WS_SIGNED_PATH, target, caller: encodeCaller(caller), body: wsSubscribeBody(grant) }, now);
}

/** A message as received, to verify. */
export interface ReceivedMessage {
  method: string;
  path: string;
  /** Header name (lower case) -> value. */
  headers: Readonly<Record<string, string | undefined>>;
  body: string | Buffer;
}

export type VerifyResult =
  | { ok: true; caller: Caller; signer: ServiceName }
  /** 401: not (validly) signed by anyone this endpoint accepts; 403: signed as a service it does not accept. */
  | { ok: false; status: 401 | 403; reason: string };

const refuse = (reason: string, status: 401 | 403 = 401): VerifyResult => ({ ok: false, status, reason });

/**
 * Verifies paygraph signatures for one endpoint of one service: `service` is who the message must
 * be for (the target), `accept` the public keys of the services that may call the endpoint.
 */
export class SignatureVerifier {
  private readonly keys: ReadonlyMap<string, VerifyingKey>;

  constructor(
    private readonly opts: {
      service: ServiceName;
      accept: Readonly<Partial<Record<ServiceName, KeyObject>>>;
      replay: ReplayGuard;
    },
  ) {
    this.keys = new Map(
      Object.entries(opts.accept).map(([name, key]) => [name, { id: name, algs: [SIGNATURE_ALG], verify: createVerifier(key!, SIGNATURE_ALG) }]),
    );
  }

  /** The services this endpoint accepts, for messages. */
  get accepted(): string[] {
    return [...this.keys.keys()];
  }

  async check(message: ReceivedMessage, now = Date.now()): Promise<VerifyResult> {
    const h = message.headers;
    if (SIGNED_FIELDS.some((f) => !h[f])) return refuse('unsigned request');
    // Cheap checks first, before any signature is verified.
    if (h[TARGET_HEADER] !== this.opts.service) return refuse(`signed for ${JSON.stringify(h[TARGET_HEADER])}, not for ${this.opts.service}`);
    if (h[CONTENT_DIGEST_HEADER] !== contentDigest(message.body)) return refuse('the content digest does not match the body');

    // What keyLookup (called by the library once per signature in the message) found.
    const seen: { signatures: number; refusal: VerifyResult | null; signer: ServiceName | null; nonce: string } = {
      signatures: 0,
      refusal: null,
      signer: null,
      nonce: '',
    };
    const keyLookup = async (params: Record<string, unknown>): Promise<VerifyingKey | null> => {
      seen.signatures += 1;
      const { keyid, alg, tag, created, nonce } = params;
      if (seen.signatures > 1) seen.refusal = refuse('more than one signature');
      else if (tag !== SIGNATURE_TAG) seen.refusal = refuse(`not a paygraph signature (tag ${JSON.stringify(tag)})`);
      else if (alg !== SIGNATURE_ALG) seen.refusal = refuse(`algorithm ${JSON.stringify(alg)} is not ${SIGNATURE_ALG}`);
      else if (!(created instanceof Date) || Math.abs(now - created.getTime()) > MAX_SKEW_MS) seen.refusal = refuse('stale signature');
      else if (typeof nonce !== 'string' || nonce.length < 16 || nonce.length > 64) seen.refusal = refuse('missing or malformed nonce');
      else if (typeof keyid === 'string' && this.keys.has(keyid)) {
        seen.signer = keyid as ServiceName;
        seen.nonce = nonce;
        return this.keys.get(keyid)!;
      } else if (isServiceName(keyid))
        seen.refusal = refuse(`${keyid} may not call this endpoint of ${this.opts.service} (it accepts ${this.accepted.join(', ')})`, 403);
      else seen.refusal = refuse(`unknown key ${JSON.stringify(keyid)}`);
      return null;
    };
    let verified: boolean | null;
    try {
      verified = await httpbis.verifyMessage(
        {
          keyLookup,
          requiredFields: [...COVERED_COMPONENTS],
          requiredParams: [...SIGNATURE_PARAMETERS],
          // Freshness is judged in keyLookup, on this clock and in both directions: the library's
          // own check would refuse any `created` ahead of it (a peer's clock a second fast).
          notAfter: new Date(now + MAX_SKEW_MS),
        },
        { method: message.method, url: urlOf(message.path), headers: present(h) },
      );
    } catch (err) {
      return seen.refusal ?? refuse(`bad signature (${err instanceof Error ? err.message : String(err)})`);
    }
    if (seen.refusal) return seen.refusal;
    if (verified !== true || seen.signatures !== 1 || !seen.signer) return refuse('bad signature');
    // Only a verified signature's nonce is remembered: unsigned noise cannot fill the memory.
    if (!(await this.opts.replay.claim(seen.nonce, now))) return refuse('replayed signature');
    const caller = decodeCaller(h[CALLER_HEADER]!);
    if (!caller) return refuse('bad caller header');
    return { ok: true, caller, signer: seen.signer };
  }
}

function present(headers: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = v;
  return out;
}
