/**
 * The subject commitment a public leaf carries instead of a user id (lib/transparency/leaf.ts):
 * base64url(SHA-256("paygraph.dev/audit/subject/v1" ‖ 0x00 ‖ salt bytes ‖ UTF-8 user id)), with
 * the per-record salt that only the user is given. Recomputing it proves the leaf is about them.
 */
import { sha256, utf8 } from './bytes.js';

export const SUBJECT_TAG = 'paygraph.dev/audit/subject/v1';

/** base64url (RFC 4648 §5), without padding, strictly: anything else is null. */
export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The commitment to `userId` under `salt` (base64url), or null when the salt is not base64url. */
export async function subjectCommitment(salt: string, userId: string): Promise<string | null> {
  const saltBytes = fromBase64Url(salt);
  if (!saltBytes) return null;
  return toBase64Url(await sha256(utf8(SUBJECT_TAG), Uint8Array.of(0), saltBytes, utf8(userId)));
}
