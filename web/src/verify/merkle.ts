/**
 * Merkle inclusion proofs of RFC 6962 / RFC 9162 (the Certificate Transparency tree that the
 * verifiable audit log publishes, issue #13): leaf hash SHA-256(0x00 || leaf), interior node
 * SHA-256(0x01 || left || right), and the verification algorithm of RFC 9162 §2.1.3.2, so that
 * the browser itself checks that a data-access record is in the tree a signed checkpoint names.
 */
import { equalBytes, sha256 } from './bytes.js';

export const leafHash = (leaf: Uint8Array) => sha256(Uint8Array.of(0), leaf);
export const nodeHash = (left: Uint8Array, right: Uint8Array) => sha256(Uint8Array.of(1), left, right);

/**
 * Whether `proof` shows the leaf with hash `leafHashValue` at `index` in the tree of `treeSize`
 * leaves whose root is `root`. Indices and sizes are bigints (a log may outgrow 2^53 entries).
 */
export async function verifyInclusion(
  index: bigint,
  treeSize: bigint,
  leafHashValue: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): Promise<boolean> {
  if (index < 0n || index >= treeSize) return false;
  if (proof.some((p) => p.length !== 32) || root.length !== 32 || leafHashValue.length !== 32) return false;
  let fn = index;
  let sn = treeSize - 1n;
  let r = leafHashValue;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(r, root);
}
