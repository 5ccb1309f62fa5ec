/**
 * The browser's own log verification (web/src/verify/): RFC 6962 inclusion proofs and C2SP signed
 * checkpoints with WebCrypto Ed25519, checked against an independent construction here with
 * node:crypto (the RFC's recursive MTH and PATH definitions, and Ed25519 signing). Every tampered
 * input is refused. A user's own record: the subject commitment against the server's
 * lib/transparency/leaf.ts, and the mark's every way to fail.
 */
import { describe, expect, it } from 'vitest';
import { noteKeyId, parseVerifierKey, verifyCheckpoint } from '../../web/src/verify/checkpoint.js';
import { leafHash, verifyInclusion } from '../../web/src/verify/merkle.js';
import { verifyRecord } from '../../web/src/verify/record.js';
import { markOf } from '../../web/src/verify/access-record.js';
import { subjectCommitment } from '../../web/src/verify/subject.js';
import { leafText, newSalt, subjectCommitment as serverCommitment } from '../../lib/transparency/leaf.js';
import { auditPath, ed25519, keyIdOf, leafOf, mth, signedNote, vkeyOf } from '../helpers/transparency.js';

describe('inclusion proofs', () => {
  it('verifies every leaf of every tree of 1 to 33 leaves', async () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leafOf(i));
      const root = mth(leaves);
      for (let m = 0; m < n; m++) {
        const ok = await verifyInclusion(BigInt(m), BigInt(n), await leafHash(leaves[m]!), auditPath(m, leaves), root);
        expect(ok, `leaf ${m} of ${n}`).toBe(true);
      }
    }
  });

  it('refuses a wrong index, leaf, tree shape, root, or a proof altered, cut short or lengthened', async () => {
    const leaves = Array.from({ length: 13 }, (_, i) => leafOf(i));
    const root = mth(leaves);
    const proof = auditPath(5, leaves);
    const lh = await leafHash(leaves[5]!);
    expect(await verifyInclusion(5n, 13n, lh, proof, root)).toBe(true);
    expect(await verifyInclusion(4n, 13n, lh, proof, root)).toBe(false);
    expect(await verifyInclusion(5n, 13n, await leafHash(leafOf(99)), proof, root)).toBe(false);
    expect(await verifyInclusion(5n, 6n, lh, proof, root)).toBe(false);
    expect(await verifyInclusion(5n, 13n, lh, proof, mth(leaves.slice(0, 12)))).toBe(false);
    const flipped = proof.map((p, i) => (i === 1 ? Buffer.from(p.map((b, j) => (j === 0 ? b ^ 1 : b))) : p));
    expect(await verifyInclusion(5n, 13n, lh, flipped, root)).toBe(false);
    expect(await verifyInclusion(5n, 13n, lh, proof.slice(0, -1), root)).toBe(false);
    expect(await verifyInclusion(5n, 13n, lh, [...proof, proof[0]!], root)).toBe(false);
    expect(await verifyInclusion(13n, 13n, lh, proof, root)).toBe(false);
    expect(await verifyInclusion(-1n, 13n, lh, proof, root)).toBe(false);
  });
});

describe('signed checkpoints', () => {
  const ORIGIN = 'paygraph.example/audit';
  const leaves = Array.from({ length: 21 }, (_, i) => leafOf(i));
  const body = `${ORIGIN}\n21\n${mth(leaves).toString('base64')}\n`;

  it('verifies a checkpoint signed by the pinned key, and a record included in it', async () => {
    const log = ed25519();
    const note = await signedNote(body, 'paygraph-audit', log.privateKey, log.raw);
    const verifier = (await parseVerifierKey(await vkeyOf('paygraph-audit', log.raw)))!;
    const cp = await verifyCheckpoint(note, verifier, ORIGIN);
    expect(cp).toMatchObject({ ok: true, checkpoint: { origin: ORIGIN, treeSize: 21n, extensions: [] } });
    const verdict = await verifyRecord({
      leaf: leaves[7]!,
      index: 7n,
      proof: auditPath(7, leaves),
      checkpoint: note,
      verifierKey: await vkeyOf('paygraph-audit', log.raw),
      origin: ORIGIN,
    });
    expect(verdict).toEqual({ verified: true, treeSize: 21n });
    // A cosignature by another key before ours changes nothing.
    const other = ed25519();
    const both = `${body}\n${(await signedNote(body, 'witness', other.privateKey, other.raw)).split('\n\n')[1]}${note.split('\n\n')[1]}`;
    expect((await verifyCheckpoint(both, verifier, ORIGIN)).ok).toBe(true);
  });

  it('computes the key id as C2SP defines it', async () => {
    const k = ed25519();
    expect(Buffer.from(await noteKeyId('paygraph-audit', k.raw))).toEqual(keyIdOf('paygraph-audit', k.raw));
  });

  it('refuses another key, an altered body, another origin, a tampered record and malformed notes or keys', async () => {
    const log = ed25519();
    const vkey = await vkeyOf('paygraph-audit', log.raw);
    const verifier = (await parseVerifierKey(vkey))!;
    const note = await signedNote(body, 'paygraph-audit', log.privateKey, log.raw);
    const impostor = ed25519();
    expect(await verifyCheckpoint(await signedNote(body, 'paygraph-audit', impostor.privateKey, impostor.raw), verifier)).toEqual({
      ok: false,
      reason: 'no signature by paygraph-audit',
    });
    expect(await verifyCheckpoint(note.replace('\n21\n', '\n22\n'), verifier)).toEqual({ ok: false, reason: 'bad signature' });
    expect((await verifyCheckpoint(note, verifier, 'elsewhere/log')).ok).toBe(false);
    expect((await verifyCheckpoint(body, verifier)).ok).toBe(false);
    expect((await verifyCheckpoint(await signedNote('just text\n', 'paygraph-audit', log.privateKey, log.raw), verifier)).ok).toBe(false);
    const record = { leaf: leaves[7]!, index: 7n, proof: auditPath(7, leaves), checkpoint: note, verifierKey: vkey, origin: ORIGIN };
    expect(await verifyRecord({ ...record, leaf: Buffer.from('record-7 (edited)') })).toEqual({ verified: false, reason: 'not in the log' });
    expect(await verifyRecord({ ...record, index: 8n })).toEqual({ verified: false, reason: 'not in the log' });
    expect(await verifyRecord({ ...record, checkpoint: note.replace('\n21\n', '\n22\n') })).toEqual({ verified: false, reason: 'bad signature' });
    // Verifier keys: a wrong id, another algorithm byte, or garbage.
    expect(await parseVerifierKey(vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toBeNull();
    expect(await parseVerifierKey(`paygraph-audit+${vkey.split('+')[1]}+${Buffer.concat([Buffer.of(2), log.raw]).toString('base64')}`)).toBeNull();
    expect(await parseVerifierKey('nonsense')).toBeNull();
  });
});

describe("a user's own record (the Privacy screen's mark)", () => {
  const userId = 'usr_alice';
  /** Eleven canonical leaves; leaf 4 is alice's, with the server's own commitment (lib/transparency/leaf.ts). */
  function fixture() {
    const salt = newSalt();
    const own = {
      v: 2 as const,
      at: '2026-11-20T14:03:07.120Z',
      subject: serverCommitment(salt, userId),
      purpose: 'payments',
      issuer: 'paygraph',
      clientId: 'paygraph-web',
      coordinates: ['Account.balance'],
      decision: 'ALLOWED',
      reason: null,
      layer: 'gateway',
      operationHash: 'ab'.repeat(32),
      operationName: 'MyBalances',
      institutions: ['ins_chase'],
      count: 1,
      marks: [],
    };
    const texts = Array.from({ length: 11 }, (_, i) => (i === 4 ? leafText(own) : leafText({ ...own, subject: null, at: `2026-11-20T14:03:0${i % 10}.000Z` })));
    const leaves = texts.map((t) => Buffer.from(t));
    const checkpoint = { origin: 'paygraph.test/audit', treeSize: 11n, rootHash: new Uint8Array(mth(leaves)), extensions: [] };
    const record = {
      leafIndex: 4,
      leaf: texts[4]!,
      salt,
      at: own.at,
      decision: own.decision,
      operationHash: own.operationHash,
      proof: { treeSize: 11, hashes: auditPath(4, leaves).map((h) => h.toString('base64')) },
    };
    return { record, checkpoint, salt };
  }

  it('recomputes the subject commitment exactly as the server does', async () => {
    for (const id of ['usr_alice', 'usr_bob', 'ü-ñ-😀', '']) {
      const salt = newSalt();
      expect(await subjectCommitment(salt, id)).toBe(serverCommitment(salt, id));
    }
    expect(await subjectCommitment('not base64url!', userId)).toBeNull();
  });

  it('is verified when the leaf is about the user, says what the record says and is included; pending when newer than the checkpoint', async () => {
    const { record, checkpoint } = fixture();
    expect(await markOf(record, userId, checkpoint)).toEqual({ state: 'verified' });
    expect(await markOf({ ...record, leafIndex: 11, proof: null }, userId, checkpoint)).toEqual({ state: 'pending' });
  });

  it('is not verified for a leaf rewritten, about someone else, differing from the record, or a proof of another tree', async () => {
    const { record, checkpoint } = fixture();
    const no = (reason: string) => ({ state: 'not-verified', reason });
    expect(await markOf({ ...record, leaf: record.leaf.replace('"count":1', '"count":2') }, userId, checkpoint)).toEqual(no('not in the log'));
    expect(await markOf(record, 'usr_bob', checkpoint)).toEqual(no('leaf is not about you'));
    expect(await markOf({ ...record, salt: newSalt() }, userId, checkpoint)).toEqual(no('leaf is not about you'));
    expect(await markOf({ ...record, decision: 'REFUSED' }, userId, checkpoint)).toEqual(no('record differs from its leaf'));
    expect(await markOf({ ...record, proof: { ...record.proof, treeSize: 10 } }, userId, checkpoint)).toEqual(no('proof for another tree'));
    expect(await markOf({ ...record, proof: null }, userId, checkpoint)).toEqual(no('no inclusion proof'));
    expect(await markOf({ ...record, leafIndex: 5 }, userId, checkpoint)).toEqual(no('not in the log'));
  });
});
