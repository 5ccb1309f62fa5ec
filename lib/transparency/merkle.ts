/**
 * The RFC 6962 Merkle tree (RFC 9162 §2.1), exactly: SHA-256, leaf hash = H(0x00 ‖ leaf), node
 * hash = H(0x01 ‖ left ‖ right), the tree of n leaves split at the largest power of two below n.
 *
 * Self-contained (node:crypto only, no other import) so that the server, the witness CLI and a
 * browser build can share it. Proofs are built from stored hashes of complete subtrees: a node
 * (level, index) is the root of leaves [index·2^level, (index+1)·2^level), and every hash a proof
 * needs is one such node or a fold of O(log n) of them (rangeNodes), so a proof costs O(log n)
 * reads, never a re-hash of the log. Sizes are plain numbers (exact up to 2^53): no bitwise
 * operators, which would cut them to 32 bits.
 */
import { createHash } from 'node:crypto';

export type Hash = Uint8Array;

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). Level 0 is a leaf. */
export interface NodeId {
  level: number;
  index: number;
}

/** Reads stored complete-subtree hashes, in the order asked. */
export type NodeReader = (nodes: readonly NodeId[]) => Promise<Hash[]>;

export const HASH_SIZE = 32;

function sha256(...parts: Uint8Array[]): Hash {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** MTH of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Hash = sha256();

export function leafHash(leaf: Uint8Array): Hash {
  return sha256(Uint8Array.of(0), leaf);
}

export function nodeHash(left: Hash, right: Hash): Hash {
  return sha256(Uint8Array.of(1), left, right);
}

export function equalHashes(a: Hash, b: Hash): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const half = (n: number) => Math.floor(n / 2);
const odd = (n: number) => n % 2 === 1;

/** The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && splitPoint(n + 1) === n;
}

function checkSize(name: string, n: number, min = 0): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${n}`);
}

/** A range of leaves [start, end) whose MTH a proof carries. */
interface Range {
  start: number;
  end: number;
}

/** The complete subtrees whose fold (left to right, RFC split) is MTH(D[start:end]). */
export function rangeNodes(start: number, end: number): NodeId[] {
  const n = end - start;
  if (n < 1) throw new RangeError(`empty range [${start}, ${end})`);
  if (isPowerOfTwo(n) && start % n === 0) return [{ level: Math.log2(n), index: start / n }];
  const k = splitPoint(n);
  return [...rangeNodes(start, start + k), ...rangeNodes(start + k, end)];
}

/** Folds the hashes of rangeNodes(start, end) (given in that order) into MTH(D[start:end]). */
function foldRange(start: number, end: number, hashes: Hash[]): Hash {
  const n = end - start;
  if (isPowerOfTwo(n) && start % n === 0) return hashes.shift()!;
  const k = splitPoint(n);
  const left = foldRange(start, start + k, hashes);
  return nodeHash(left, foldRange(start + k, end, hashes));
}

/** RFC 9162 §2.1.3.1 PATH(m, D[start:end]), as the ranges whose MTH it lists, leaf to root. */
function inclusionRanges(m: number, start: number, end: number): Range[] {
  const n = end - start;
  if (n === 1) return [];
  const k = splitPoint(n);
  return m < k ? [...inclusionRanges(m, start, start + k), { start: start + k, end }] : [...inclusionRanges(m - k, start + k, end), { start, end: start + k }];
}

/** RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:end], b), as ranges. */
function consistencyRanges(m: number, start: number, end: number, complete: boolean): Range[] {
  const n = end - start;
  if (m === n) return complete ? [] : [{ start, end }];
  const k = splitPoint(n);
  return m <= k
    ? [...consistencyRanges(m, start, start + k, complete), { start: start + k, end }]
    : [...consistencyRanges(m - k, start + k, end, false), { start, end: start + k }];
}

/** The hashes of `ranges`, with one read of every stored node they need. */
async function rangeHashes(ranges: Range[], read: NodeReader): Promise<Hash[]> {
  const nodes = ranges.map((r) => rangeNodes(r.start, r.end));
  const hashes = await read(nodes.flat());
  if (hashes.length !== nodes.flat().length) throw new Error('node reader answered the wrong number of hashes');
  return ranges.map((r) => foldRange(r.start, r.end, hashes.splice(0, rangeNodes(r.start, r.end).length)));
}

/** MTH(D[0:size]) from stored nodes. */
export async function rootHash(size: number, read: NodeReader): Promise<Hash> {
  checkSize('size', size);
  if (size === 0) return EMPTY_ROOT;
  return (await rangeHashes([{ start: 0, end: size }], read))[0]!;
}

/** The audit path of leaf `index` in the tree of `size` leaves, leaf to root (RFC 9162 §2.1.3.1). */
export async function inclusionProof(index: number, size: number, read: NodeReader): Promise<Hash[]> {
  checkSize('size', size, 1);
  checkSize('index', index);
  if (index >= size) throw new RangeError(`index ${index} is not below size ${size}`);
  return rangeHashes(inclusionRanges(index, 0, size), read);
}

/** The consistency proof from the tree of `from` leaves to the tree of `to` (RFC 9162 §2.1.4.1). */
export async function consistencyProof(from: number, to: number, read: NodeReader): Promise<Hash[]> {
  checkSize('from', from);
  checkSize('to', to);
  if (from > to) throw new RangeError(`from ${from} is beyond to ${to}`);
  if (from === 0 || from === to) return [];
  return rangeHashes(consistencyRanges(from, 0, to, true), read);
}

/** An in-memory NodeReader over leaf hashes (tests, the witness re-hashing every entry). */
export function memoryReader(leaves: readonly Hash[]): NodeReader {
  const node = ({ level, index }: NodeId): Hash => {
    const width = 2 ** level;
    if ((index + 1) * width > leaves.length) throw new RangeError(`node (${level}, ${index}) is beyond ${leaves.length} leaves`);
    if (level === 0) return leaves[index]!;
    return nodeHash(node({ level: level - 1, index: index * 2 }), node({ level: level - 1, index: index * 2 + 1 }));
  };
  return (nodes) => Promise.resolve(nodes.map(node));
}

/**
 * The nodes that become complete when leaf `index` is appended, bottom up, with the stored left
 * siblings each needs: what an append writes beside the leaf (its own hash is node (0, index)).
 * `left(level, index)` gives a stored node hash (the right edge of the tree before the append).
 */
export function completedNodes(index: number, leaf: Hash, left: (node: NodeId) => Hash): { node: NodeId; hash: Hash }[] {
  const out = [{ node: { level: 0, index }, hash: leaf }];
  let level = 0;
  let i = index;
  let hash = leaf;
  while (odd(i)) {
    hash = nodeHash(left({ level, index: i - 1 }), hash);
    level++;
    i = half(i);
    out.push({ node: { level, index: i }, hash });
  }
  return out;
}

/** The left siblings completedNodes(index, …) will ask for: complete subtrees on the tree's right edge. */
export function leftSiblings(index: number): NodeId[] {
  const out: NodeId[] = [];
  let level = 0;
  let i = index;
  while (odd(i)) {
    out.push({ level, index: i - 1 });
    level++;
    i = half(i);
  }
  return out;
}

/** RFC 9162 §2.1.3.2: whether `proof` shows the leaf `leaf` at `index` in the tree of `size` with root `root`. */
export function verifyInclusion(index: number, size: number, leaf: Hash, proof: readonly Hash[], root: Hash): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(r, root);
}

/** RFC 9162 §2.1.4.2: whether `proof` shows the tree (`from`, `fromRoot`) is a prefix of (`to`, `toRoot`). */
export function verifyConsistency(from: number, to: number, fromRoot: Hash, toRoot: Hash, proof: readonly Hash[]): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to) return false;
  if (fromRoot.length !== HASH_SIZE || toRoot.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return false;
  // Every tree extends the empty one; a tree is consistent with itself only.
  if (from === 0) return proof.length === 0 && equalHashes(fromRoot, EMPTY_ROOT);
  if (from === to) return proof.length === 0 && equalHashes(fromRoot, toRoot);
  const path = isPowerOfTwo(from) ? [fromRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = from - 1;
  let sn = to - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(fr, fromRoot) && equalHashes(sr, toRoot);
}

/** MTH of a list of leaf hashes, in one pass (the witness re-hashing every entry). */
export function rootOfLeaves(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return EMPTY_ROOT;
  // The right edge: complete subtrees of decreasing size, as appends leave them.
  const stack: { level: number; hash: Hash }[] = [];
  for (const leaf of leaves) {
    let top = { level: 0, hash: leaf };
    while (stack.length > 0 && stack[stack.length - 1]!.level === top.level) {
      const left = stack.pop()!;
      top = { level: top.level + 1, hash: nodeHash(left.hash, top.hash) };
    }
    stack.push(top);
  }
  // An incomplete tree: the smaller subtrees fold right to left (RFC 6962's split).
  let hash = stack.pop()!.hash;
  while (stack.length > 0) hash = nodeHash(stack.pop()!.hash, hash);
  return hash;
}
