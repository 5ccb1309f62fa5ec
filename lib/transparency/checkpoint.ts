/**
 * Signed checkpoints in the C2SP formats: the `tlog-checkpoint` body (origin line, decimal tree
 * size, base64 root hash, each ending in a newline) signed as a C2SP `signed-note` with Ed25519,
 * whose verifier key has the golang.org/x/mod/sumdb/note form
 * `<name>+<8 hex key hash>+<base64(0x01 ‖ 32-byte public key)>`, the key hash being the first
 * four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). A note's signature line is
 * `— <name> <base64(key hash ‖ 64-byte signature)>` after an empty line; the signature covers the
 * body's bytes, final newline included.
 *
 * Self-contained (node:crypto only), like merkle.ts, for the server, the witness and a browser build.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** Signature type byte of an Ed25519 signed-note key. */
const ED25519 = 0x01;
const SIGNATURE_PREFIX = '\u2014 ';

export interface Checkpoint {
  origin: string;
  size: number;
  /** 32 bytes. */
  root: Uint8Array;
  /** Extension lines after the root, if any (kept, not interpreted). */
  extensions?: string[];
}

export interface VerifierKey {
  name: string;
  /** The 4-byte key hash, as an unsigned 32-bit number. */
  keyHash: number;
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/** Names are non-empty and hold no whitespace or '+' (signed-note). */
function checkName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name)) throw new Error(`not a signed-note key name: ${JSON.stringify(name)}`);
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('a checkpoint key is Ed25519');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function keyHash(name: string, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(name).update(Uint8Array.of(0x0a, ED25519)).update(publicKey).digest();
  return digest.readUInt32BE(0);
}

/** The verifier key (vkey) of an Ed25519 key (private or public) under `name`. */
export function verifierKey(name: string, key: KeyObject): string {
  checkName(name);
  const pub = rawPublicKey(key);
  const hash = keyHash(name, pub).toString(16).padStart(8, '0');
  return `${name}+${hash}+${Buffer.concat([Uint8Array.of(ED25519), pub]).toString('base64')}`;
}

export function parseVerifierKey(vkey: string): VerifierKey {
  // The base64 key may itself hold '+': only the first two separate fields.
  const m = /^([^+]+)\+([^+]*)\+(.*)$/s.exec(vkey.trim());
  if (!m) throw new Error('a verifier key is <name>+<hash>+<key>');
  const [, name, hashHex, keyB64] = m as unknown as [string, string, string, string];
  checkName(name);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new Error('a verifier key hash is 8 lowercase hex digits');
  const key = Buffer.from(keyB64, 'base64');
  if (key.toString('base64') !== keyB64 || key.length !== 33 || key[0] !== ED25519)
    throw new Error('the verifier key is not an Ed25519 key (0x01 ‖ 32 bytes, base64)');
  const publicKey = new Uint8Array(key.subarray(1));
  const hash = Number.parseInt(hashHex, 16);
  if (keyHash(name, publicKey) !== hash) throw new Error('the verifier key hash does not match its name and key');
  return { name, keyHash: hash, publicKey };
}

export function checkpointBody(c: Checkpoint): string {
  if (c.origin.length === 0 || /\n/.test(c.origin)) throw new Error('a checkpoint origin is one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new Error('a checkpoint size is a non-negative integer');
  if (c.root.length !== 32) throw new Error('a checkpoint root is 32 bytes');
  const ext = (c.extensions ?? []).map((l) => `${l}\n`).join('');
  return `${c.origin}\n${c.size}\n${Buffer.from(c.root).toString('base64')}\n${ext}`;
}

export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') throw new Error('a checkpoint body is at least three lines, each ending in a newline');
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin.length === 0) throw new Error('the checkpoint has no origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new Error(`the checkpoint size is not a decimal: ${sizeText}`);
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) throw new Error('the checkpoint root is not 32 bytes of base64');
  const extensions = lines.slice(3, -1);
  return { origin, size: Number(sizeText), root: new Uint8Array(root), ...(extensions.length ? { extensions } : {}) };
}

/** Signs `text` (ending in a newline) as a signed note by `name` with the Ed25519 `key`. */
export function signNote(text: string, name: string, key: KeyObject): string {
  checkName(name);
  if (!text.endsWith('\n')) throw new Error('a note text ends in a newline');
  const hash = Buffer.alloc(4);
  hash.writeUInt32BE(keyHash(name, rawPublicKey(key)));
  const signature = sign(null, Buffer.from(text, 'utf8'), key);
  return `${text}\n${SIGNATURE_PREFIX}${name} ${Buffer.concat([hash, signature]).toString('base64')}\n`;
}

/**
 * The text of `note` if it carries a valid signature by `vkey`; throws naming what is wrong
 * otherwise (no signature by that key, or a bad one). Signatures by other keys are ignored.
 */
export function openNote(note: string, vkey: VerifierKey): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('not a signed note (no blank line before the signatures)');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let seen = false;
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new Error(`not a signature line: ${JSON.stringify(line.slice(0, 80))}`);
    const [name, b64] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    if (name !== vkey.name || b64 === undefined) continue;
    const raw = Buffer.from(b64, 'base64');
    if (raw.length !== 68 || raw.readUInt32BE(0) !== vkey.keyHash) continue;
    seen = true;
    if (verify(null, Buffer.from(text, 'utf8'), publicKeyObject(vkey.publicKey), raw.subarray(4))) return text;
  }
  throw new Error(seen ? `bad signature by ${vkey.name}` : `no signature by ${vkey.name}`);
}

export function signCheckpoint(c: Checkpoint, key: KeyObject, name: string = c.origin): string {
  return signNote(checkpointBody(c), name, key);
}

/** The checkpoint of a signed note, verified against `vkey`; throws when the signature or body is bad. */
export function openCheckpoint(note: string, vkey: VerifierKey): Checkpoint {
  return parseCheckpointBody(openNote(note, vkey));
}
