/**
 * lib/transparency/merkle.ts against the RFC 6962 reference vectors used by Certificate
 * Transparency implementations (the eight leaves, their tree heads and published proofs), and
 * every inclusion and consistency proof of every tree of 1 to 64 leaves, built from stored
 * complete-subtree nodes and checked by the RFC 9162 verifiers (and refused once mangled).
 */
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  memoryReader,
  rangeNodes,
  rootHash,
  rootOfLeaves,
  verifyConsistency,
  verifyInclusion,
  completedNodes,
  leftSiblings,
  type Hash,
  type NodeId,
} from '../../lib/transparency/merkle.js';

const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');
const unhex = (s: string): Hash => new Uint8Array(Buffer.from(s, 'hex'));

const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((l) => leafHash(unhex(l)));
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_INCLUSION = [
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const CT_CONSISTENCY = [
  { from: 1, to: 1, proof: [] },
  {
    from: 1,
    to: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    from: 6,
    to: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    from: 2,
    to: 5,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'],
  },
  {
    from: 2,
    to: 8,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  },
];

/** A tree kept as the server keeps it: the nodes each append completes, read by (level, index). */
function storedTree(leaves: readonly Hash[]) {
  const nodes = new Map<string, Hash>();
  const key = (n: NodeId) => `${n.level}/${n.index}`;
  let reads = 0;
  leaves.forEach((leaf, i) => {
    for (const { node, hash } of completedNodes(i, leaf, (n) => nodes.get(key(n))!)) nodes.set(key(node), hash);
  });
  return {
    read: (ids: readonly NodeId[]) => {
      reads += ids.length;
      return Promise.resolve(
        ids.map((n) => {
          const h = nodes.get(key(n));
          if (!h) throw new Error(`node ${key(n)} not stored`);
          return h;
        }),
      );
    },
    reads: () => reads,
  };
}

describe('RFC 6962 Merkle tree (lib/transparency/merkle.ts)', () => {
  it('gives the published tree heads of the reference leaves', async () => {
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(rootOfLeaves([]))).toBe(hex(EMPTY_ROOT));
    const tree = storedTree(CT_LEAVES);
    for (let n = 1; n <= 8; n++) {
      expect(hex(rootOfLeaves(CT_LEAVES.slice(0, n))), `size ${n}`).toBe(CT_ROOTS[n - 1]);
      expect(hex(await rootHash(n, tree.read)), `size ${n} from stored nodes`).toBe(CT_ROOTS[n - 1]);
    }
  });

  it('builds and verifies the published inclusion proofs', async () => {
    const tree = storedTree(CT_LEAVES);
    for (const v of CT_INCLUSION) {
      expect((await inclusionProof(v.index, v.size, tree.read)).map(hex), `${v.index}/${v.size}`).toEqual(v.proof);
      expect(verifyInclusion(v.index, v.size, CT_LEAVES[v.index]!, v.proof.map(unhex), unhex(CT_ROOTS[v.size - 1]!))).toBe(true);
    }
  });

  it('builds and verifies the published consistency proofs', async () => {
    const tree = storedTree(CT_LEAVES);
    for (const v of CT_CONSISTENCY) {
      expect((await consistencyProof(v.from, v.to, tree.read)).map(hex), `${v.from}→${v.to}`).toEqual(v.proof);
      expect(verifyConsistency(v.from, v.to, unhex(CT_ROOTS[v.from - 1]!), unhex(CT_ROOTS[v.to - 1]!), v.proof.map(unhex))).toBe(true);
    }
    // A wrong old root is refused.
    expect(verifyConsistency(6, 8, unhex(CT_ROOTS[4]!), unhex(CT_ROOTS[7]!), CT_CONSISTENCY[2]!.proof.map(unhex))).toBe(false);
  });

  const N = 64;
  const leaves = Array.from({ length: N }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
  const roots = Array.from({ length: N + 1 }, (_, n) => rootOfLeaves(leaves.slice(0, n)));
  const flip = (proof: Hash[], at: number) => proof.map((p, j) => (j === at ? Uint8Array.from(p, (b, k) => (k === 0 ? b ^ 1 : b)) : p));

  it('every inclusion proof of every tree of 1..64 leaves verifies, and none mangled does', async () => {
    const tree = storedTree(leaves);
    const reference = memoryReader(leaves);
    for (let size = 1; size <= N; size++) {
      expect(hex(await rootHash(size, tree.read))).toBe(hex(roots[size]!));
      for (let i = 0; i < size; i++) {
        const proof = await inclusionProof(i, size, tree.read);
        expect(proof.map(hex)).toEqual((await inclusionProof(i, size, reference)).map(hex));
        expect(verifyInclusion(i, size, leaves[i]!, proof, roots[size]!), `${i}/${size}`).toBe(true);
        expect(verifyInclusion(i, size, leaves[(i + 1) % N]!, proof, roots[size]!)).toBe(false);
        if (size > 1) expect(verifyInclusion((i + 1) % size, size, leaves[i]!, proof, roots[size]!)).toBe(i === (i + 1) % size);
        for (let j = 0; j < proof.length; j++) expect(verifyInclusion(i, size, leaves[i]!, flip(proof, j), roots[size]!)).toBe(false);
        if (proof.length) expect(verifyInclusion(i, size, leaves[i]!, proof.slice(0, -1), roots[size]!)).toBe(false);
        expect(verifyInclusion(i, size, leaves[i]!, [...proof, leaves[0]!], roots[size]!)).toBe(false);
      }
      expect(verifyInclusion(size, size, leaves[0]!, [], roots[size]!)).toBe(false);
    }
  });

  it('every consistency proof between trees of 0..64 leaves verifies, and none mangled does', async () => {
    const tree = storedTree(leaves);
    for (let to = 1; to <= N; to++) {
      for (let from = 0; from <= to; from++) {
        const proof = await consistencyProof(from, to, tree.read);
        expect(verifyConsistency(from, to, roots[from]!, roots[to]!, proof), `${from}→${to}`).toBe(true);
        if (from > 0 && from < to) {
          for (let j = 0; j < proof.length; j++) expect(verifyConsistency(from, to, roots[from]!, roots[to]!, flip(proof, j))).toBe(false);
          expect(verifyConsistency(from, to, roots[from]!, roots[to]!, proof.slice(0, -1))).toBe(false);
          expect(verifyConsistency(from, to, roots[from]!, roots[to]!, [...proof, leaves[0]!])).toBe(false);
          // A tree whose earlier leaf changed is not an extension of the old one.
          const forked = rootOfLeaves([...leaves.slice(0, from - 1), leafHash(Uint8Array.of(9)), ...leaves.slice(from, to)]);
          expect(verifyConsistency(from, to, roots[from]!, forked, proof)).toBe(false);
        }
      }
    }
    expect(verifyConsistency(5, 4, roots[5]!, roots[4]!, [])).toBe(false);
  });

  it('a proof reads O(log n) stored nodes', async () => {
    const big = Array.from({ length: 5000 }, (_, i) => leafHash(Uint8Array.of(i % 256, Math.floor(i / 256))));
    const tree = storedTree(big);
    const before = tree.reads();
    await inclusionProof(1234, 4999, tree.read);
    await consistencyProof(3333, 4999, tree.read);
    expect(tree.reads() - before).toBeLessThanOrEqual(4 * Math.ceil(Math.log2(5000)));
    expect(rangeNodes(0, 4999).length).toBeLessThanOrEqual(13);
    expect(leftSiblings(7)).toEqual([
      { level: 0, index: 6 },
      { level: 1, index: 2 },
      { level: 2, index: 0 },
    ]);
  });
});
