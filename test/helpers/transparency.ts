/**
 * An independent RFC 6962 / C2SP construction with node:crypto, to check the browser's verifiers
 * (web/src/verify/) against: the RFC's recursive MTH and PATH definitions, and signed notes made
 * with Ed25519 keys generated per test.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

const h = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
export const leafOf = (i: number) => Buffer.from(`record-${i}`);

/** RFC 6962 §2.1: MTH(D[n]), k the largest power of two smaller than n. */
export function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return h(Buffer.of(0), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return h(Buffer.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
/** RFC 6962 §2.1.1: PATH(m, D[n]). */
export function auditPath(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length === 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return m < k ? [...auditPath(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...auditPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** C2SP key id of an Ed25519 key: SHA-256(name || "\n" || 0x01 || key)[:4]. */
export const keyIdOf = (name: string, raw: Buffer) => h(Buffer.from(`${name}\n`), Buffer.of(1), raw).subarray(0, 4);

/** A C2SP signed note of `text` by (name, key). */
export function signedNote(text: string, name: string, privateKey: KeyObject, publicRaw: Buffer): string {
  const id = keyIdOf(name, publicRaw);
  const sig = sign(null, Buffer.from(text), privateKey);
  return `${text}\n\u2014 ${name} ${Buffer.concat([id, sig]).toString('base64')}\n`;
}
export function ed25519() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { privateKey, raw };
}
export function vkeyOf(name: string, raw: Buffer): string {
  return `${name}+${keyIdOf(name, raw).toString('hex')}+${Buffer.concat([Buffer.of(1), raw]).toString('base64')}`;
}
