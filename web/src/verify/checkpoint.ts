/**
 * Signed checkpoints: the C2SP signed-note format (https://c2sp.org/signed-note) carrying a C2SP
 * tlog-checkpoint body (origin, tree size, base64 root hash, optional extension lines), signed
 * with Ed25519 and verified with WebCrypto against a pinned verifier key
 * "<name>+<hex key id>+<base64(0x01 || 32-byte public key)>". The key id is the first four bytes
 * of SHA-256(name || "\n" || 0x01 || public key); a signature line is
 * "— <name> <base64(key id || 64-byte signature)>", and the signed message is the note's text,
 * its final newline included.
 */
import { equalBytes, fromBase64, fromHex, sha256, utf8 } from './bytes.js';

const ED25519 = 0x01;

export interface NoteVerifier {
  name: string;
  keyId: Uint8Array;
  key: CryptoKey;
}

export interface Checkpoint {
  origin: string;
  treeSize: bigint;
  rootHash: Uint8Array;
  extensions: string[];
}

export type CheckpointResult = { ok: true; checkpoint: Checkpoint } | { ok: false; reason: string };

/** The key id of an Ed25519 note key. */
export async function noteKeyId(name: string, publicKey: Uint8Array): Promise<Uint8Array> {
  return (await sha256(utf8(`${name}\n`), Uint8Array.of(ED25519), publicKey)).slice(0, 4);
}

/** Parses a pinned verifier key; null when malformed, not Ed25519, or its id does not match its key. */
export async function parseVerifierKey(vkey: string): Promise<NoteVerifier | null> {
  // Split on the first two '+' only: base64 has '+' of its own.
  const m = /^([^+\s]+)\+([0-9a-fA-F]{8})\+(\S+)$/.exec(vkey.trim());
  if (!m) return null;
  const [, name, hexId, b64] = m as unknown as [string, string, string, string];
  const id = fromHex(hexId);
  const keyBytes = fromBase64(b64);
  if (!name || /[\s+]/.test(name) || !id || id.length !== 4 || !keyBytes || keyBytes.length !== 33 || keyBytes[0] !== ED25519) return null;
  const raw = keyBytes.slice(1);
  if (!equalBytes(id, await noteKeyId(name, raw))) return null;
  const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  return { name, keyId: id, key };
}

/** Splits a signed note into its text and signature lines; null when it is not one. */
function splitNote(note: string): { text: string; signatures: { name: string; blob: Uint8Array }[] } | null {
  const cut = note.lastIndexOf('\n\n');
  if (cut < 0 || !note.endsWith('\n')) return null;
  const text = note.slice(0, cut + 1);
  const lines = note.slice(cut + 2, -1).split('\n');
  const signatures: { name: string; blob: Uint8Array }[] = [];
  for (const line of lines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) return null;
    const blob = fromBase64(m[2]!);
    if (!blob || blob.length < 5) return null;
    signatures.push({ name: m[1]!, blob });
  }
  return signatures.length ? { text, signatures } : null;
}

/** Verifies a signed checkpoint: a valid signature by `verifier`, then the checkpoint body (and its origin, when given). */
export async function verifyCheckpoint(note: string, verifier: NoteVerifier, expectedOrigin?: string): Promise<CheckpointResult> {
  const split = splitNote(note);
  if (!split) return { ok: false, reason: 'not a signed note' };
  const mine = split.signatures.filter((s) => s.name === verifier.name && equalBytes(s.blob.slice(0, 4), verifier.keyId));
  if (mine.length === 0) return { ok: false, reason: `no signature by ${verifier.name}` };
  let signed = false;
  for (const s of mine) {
    const sig = s.blob.slice(4);
    if (sig.length === 64 && (await crypto.subtle.verify({ name: 'Ed25519' }, verifier.key, sig, utf8(split.text)))) signed = true;
  }
  if (!signed) return { ok: false, reason: 'bad signature' };
  const [origin, size, root, ...extensions] = split.text.slice(0, -1).split('\n');
  const rootHash = root === undefined ? null : fromBase64(root);
  if (!origin || !size || !/^(0|[1-9]\d*)$/.test(size) || !rootHash || rootHash.length !== 32) return { ok: false, reason: 'not a checkpoint' };
  if (expectedOrigin !== undefined && origin !== expectedOrigin) return { ok: false, reason: `origin ${origin}, expected ${expectedOrigin}` };
  return { ok: true, checkpoint: { origin, treeSize: BigInt(size), rootHash, extensions } };
}
