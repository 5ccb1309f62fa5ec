/**
 * The leaves of paygraph's audit log: one per data-access record, its bytes the record's public
 * part as RFC 8785 canonical JSON (JCS, the `canonicalize` package). A leaf names no user: its
 * `subject` is a salted commitment, base64url(SHA-256(SUBJECT_TAG ‖ salt ‖ user id)) with a random
 * per-record salt that only the user (and later their bank's oversight credential) is given, so
 * that they, and nobody else, can recompute it from the user id. Anonymous callers have no
 * subject (null). No amount, balance, mask or account id is ever in a leaf.
 *
 * Self-contained (node:crypto and canonicalize), like merkle.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';

/** Domain tag of the subject commitment (followed by one 0x00 byte, then salt and user id). */
export const SUBJECT_TAG = 'paygraph.dev/audit/subject/v1';
/** Bytes of a record's salt. */
export const SALT_BYTES = 16;

/**
 * The public part of one data-access record: exactly what its leaf holds. Format 2 (the current
 * one) adds the verified `issuer` and `clientId` to format 1; a leaf never changes its format once
 * logged, so older leaves stay v1 and hash as they always did.
 */
export interface AuditLeaf {
  /** Leaf format version. */
  v: 2;
  /** ISO-8601 UTC time of the decision. */
  at: string;
  /** The salted commitment to the user id; null for an anonymous caller. */
  subject: string | null;
  purpose: string | null;
  /** The token's issuer (`iss`), verified by the gateway; null for an anonymous caller. */
  issuer: string | null;
  /**
   * The credential the token was issued to (`client_id` / `azp`), verified; null when it named
   * none. A client id names an app or service (e.g. the ads service's credential), never a person.
   */
  clientId: string | null;
  /** Protected coordinates the operation selected, sorted. */
  coordinates: string[];
  decision: string;
  /** Why a REFUSED record was refused (the code the caller got); null when ALLOWED. */
  reason: string | null;
  layer: string;
  operationHash: string;
  operationName: string | null;
  /** Sorted ids of the institutions whose customers' data the operation touched. */
  institutions: string[];
  /** How many identical refused attempts this record stands for (coalesced per window); 1 otherwise. */
  count: number;
  /** Fields the audit service had to bound or replace (e.g. `operationName:truncated`), sorted. */
  marks: string[];
}

/**
 * Salts are cut from a pool of CSPRNG bytes (4 KiB at a time, never reused): one randomBytes call
 * per 256 salts instead of one per record, on the audit append's path.
 */
const SALT_POOL_BYTES = 4096;
let saltPool = Buffer.alloc(0);
let saltOffset = 0;

export function newSalt(): string {
  if (saltOffset + SALT_BYTES > saltPool.length) {
    saltPool = randomBytes(SALT_POOL_BYTES);
    saltOffset = 0;
  }
  const salt = saltPool.subarray(saltOffset, saltOffset + SALT_BYTES).toString('base64url');
  saltOffset += SALT_BYTES;
  return salt;
}

/** base64url(SHA-256(SUBJECT_TAG ‖ 0x00 ‖ salt bytes ‖ UTF-8 user id)): what a user recomputes. */
export function subjectCommitment(salt: string, userId: string): string {
  return createHash('sha256').update(SUBJECT_TAG).update(Uint8Array.of(0)).update(Buffer.from(salt, 'base64url')).update(userId, 'utf8').digest('base64url');
}

/** The leaf's canonical JSON text (RFC 8785). */
export function leafText(leaf: AuditLeaf): string {
  const text = canonicalize(leaf);
  if (text === undefined) throw new Error('a leaf is a JSON object');
  return text;
}

export function leafBytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
