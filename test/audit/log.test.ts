/**
 * The transparency log end to end, through the gateway: records become leaves (no user id, a
 * subject the user can recompute with their salt, the institutions touched), the public /audit/*
 * endpoints serve a signed checkpoint, the key, proofs that verify and the entries, bad parameters
 * get 400 naming them, and a user's own records carry their leaf index, salt and inclusion proof.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, parseVerifierKey, type Checkpoint } from '../../lib/transparency/checkpoint.js';
import { subjectCommitment } from '../../lib/transparency/leaf.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../lib/transparency/merkle.js';
import { recordsTouchingInstitution } from '../../subgraphs/accounts/data.js';
import { startTestStack, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let origin: string;
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

async function get(path: string): Promise<Response> {
  return fetch(`${origin}${path}`);
}

async function checkpoint(): Promise<Checkpoint> {
  const key = parseVerifierKey(await (await get('/audit/key')).text());
  return openCheckpoint(await (await get('/audit/checkpoint')).text(), key);
}

beforeAll(async () => {
  stack = await startTestStack();
  origin = new URL(stack.url).origin;
});
afterAll(async () => stack?.stop());

describe('the transparency log (docs/audit.md)', () => {
  it('serves a checkpoint signed by the audit key, in the C2SP formats, without a token', async () => {
    const keyRes = await get('/audit/key');
    expect(keyRes.status).toBe(200);
    expect(keyRes.headers.get('content-type')).toMatch(/^text\/plain/);
    const vkey = (await keyRes.text()).trim();
    expect(vkey).toMatch(/^paygraph\.dev\/audit\/[0-9a-f]{16}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    const res = await get('/audit/checkpoint');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const note = await res.text();
    expect(note).toMatch(/^paygraph\.dev\/audit\/[0-9a-f]{16}\n\d+\n[A-Za-z0-9+/]{43}=\n\n\u2014 paygraph\.dev\/audit\/[0-9a-f]{16} [A-Za-z0-9+/]+=*\n$/);
    expect(openCheckpoint(note, parseVerifierKey(vkey)).origin).toBe(vkey.split('+')[0]);
    // Not the gateway's key, nor the accounts service's transport key.
    const raw = Buffer.from(vkey.split('+')[2]!, 'base64').subarray(1).toString('base64url');
    for (const s of ['gateway', 'accounts'] as const) expect(stack.keys[s].export({ format: 'jwk' }).x).not.toBe(raw);
  });

  it('makes each audited operation a leaf with no user id, and proves it in the tree', async () => {
    const before = await checkpoint();
    const token = await stack.token('alice');
    expect((await stack.gql('query Wallet { me { accounts { id mask } } }', {}, token)).status).toBe(200);
    expect((await stack.gql('query Wallet { me { accounts { id mask } } }', {}, await stack.token('alice', 'advertising'))).status).toBe(400);
    const after = await checkpoint();
    expect(after.size).toBe(before.size + 2);

    const consistency = (await (await get(`/audit/proof/consistency?from=${before.size}&to=${after.size}`)).json()) as {
      from: number;
      to: number;
      hashes: string[];
    };
    expect(consistency).toMatchObject({ from: before.size, to: after.size });
    expect(verifyConsistency(before.size, after.size, before.root, after.root, consistency.hashes.map(unb64))).toBe(true);

    const { entries } = (await (await get(`/audit/entries?start=${before.size}&end=${after.size}`)).json()) as { entries: { index: number; leaf: string }[] };
    expect(entries.map((e) => e.index)).toEqual([before.size, before.size + 1]);
    for (const e of entries) {
      expect(e.leaf).not.toContain(userId('alice'));
      expect(e.leaf).not.toMatch(/acc_|mask":"\d/);
      const leaf = JSON.parse(e.leaf) as Record<string, unknown>;
      expect(Object.keys(leaf)).toEqual([...Object.keys(leaf)].sort()); // canonical: sorted keys
      expect(leaf, e.leaf).toMatchObject({ v: 2, operationName: 'Wallet', coordinates: ['Account.id', 'Account.mask', 'User.accounts'], count: 1, marks: [] });
      expect((leaf.institutions as string[]).length).toBeGreaterThan(0);
      expect(leaf.subject).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const proof = (await (await get(`/audit/proof/inclusion?index=${e.index}&size=${after.size}`)).json()) as {
        index: number;
        treeSize: number;
        leafHash: string;
        hashes: string[];
      };
      expect(proof).toMatchObject({ index: e.index, treeSize: after.size });
      const hash = leafHash(new TextEncoder().encode(e.leaf));
      expect(Buffer.from(hash).toString('base64')).toBe(proof.leafHash);
      expect(verifyInclusion(e.index, after.size, hash, proof.hashes.map(unb64), after.root)).toBe(true);
    }
    expect(entries.map((e) => (JSON.parse(e.leaf) as { decision: string }).decision)).toEqual(['ALLOWED', 'REFUSED']);
  });

  it('gives a user their own records with leaf index, salt and an inclusion proof against a checkpoint', async () => {
    const token = await stack.token('bob');
    await stack.gql('query BobWallet { me { accounts { id } } }', {}, token);
    const cp = await checkpoint();
    const res = await stack.gql<{ me: { dataAccessLog: { edges: { node: Record<string, unknown> }[] } } }>(
      `query Log($size: Int) { me { dataAccessLog(first: 2) { edges { node { operationName leafIndex leaf salt subject institutions
        inclusionProof(treeSize: $size) { leafIndex treeSize leafHash hashes } } } } } }`,
      { size: cp.size },
      token,
    );
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    // The newest record is this very query's (reading the log is audited too).
    const node = res.data!.me.dataAccessLog.edges.find((e) => e.node.operationName === 'BobWallet')!.node as {
      leafIndex: number;
      leaf: string;
      salt: string;
      subject: string;
      inclusionProof: { leafIndex: number; treeSize: number; leafHash: string; hashes: string[] };
    };
    expect(subjectCommitment(node.salt, userId('bob'))).toBe(node.subject);
    expect(subjectCommitment(node.salt, userId('alice'))).not.toBe(node.subject);
    expect((JSON.parse(node.leaf) as { subject: string }).subject).toBe(node.subject);
    const { entries } = (await (await get(`/audit/entries?start=${node.leafIndex}&end=${node.leafIndex + 1}`)).json()) as { entries: { leaf: string }[] };
    expect(entries[0]!.leaf).toBe(node.leaf);
    const p = node.inclusionProof;
    expect(p).toMatchObject({ leafIndex: node.leafIndex, treeSize: cp.size });
    // This query's own record is newer than the checkpoint: no proof in that tree yet.
    expect(res.data!.me.dataAccessLog.edges[0]!.node.inclusionProof).toBeNull();
    // A tree size beyond the log is refused, naming the argument.
    const beyond = await stack.gql(`{ me { dataAccessLog(first: 1) { edges { node { inclusionProof(treeSize: 1000000) { treeSize } } } } } }`, {}, token);
    expect(beyond.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'treeSize' });
    expect(verifyInclusion(node.leafIndex, cp.size, leafHash(new TextEncoder().encode(node.leaf)), p.hashes.map(unb64), cp.root)).toBe(true);
  });

  it("gives a bank's records, with leaf indexes and salts, to recordsTouchingInstitution (for its oversight credential)", async () => {
    const db = stack.dbs.accounts;
    const chase = await recordsTouchingInstitution(db, 'ins_chase', { first: 100 });
    expect(chase.length).toBeGreaterThan(0);
    for (const r of chase) {
      expect(r.institutions).toContain('ins_chase');
      expect(JSON.parse(r.leaf)).toMatchObject({ institutions: r.institutions });
      if (r.userId) expect(subjectCommitment(r.salt!, r.userId)).toBe(r.subject);
    }
    expect(chase.map((r) => r.leafIndex)).toEqual([...chase.map((r) => r.leafIndex)].sort((a, b) => a - b));
    const after = await recordsTouchingInstitution(db, 'ins_chase', { first: 100, after: chase[0]!.leafIndex });
    expect(after.map((r) => r.leafIndex)).toEqual(chase.slice(1).map((r) => r.leafIndex));
    // `_` is not a wildcard: an id differing there matches nothing.
    expect(await recordsTouchingInstitution(db, 'ins%chase', { first: 100 })).toEqual([]);
    expect(await recordsTouchingInstitution(db, 'insXchase', { first: 100 })).toEqual([]);
  });

  it('answers 400 naming the parameter for every bad one', async () => {
    const { size } = await checkpoint();
    const cases: [string, string][] = [
      ['/audit/proof/inclusion?index=x&size=1', 'index'],
      ['/audit/proof/inclusion?index=-1&size=1', 'index'],
      ['/audit/proof/inclusion?index=0', 'size'],
      ['/audit/proof/inclusion?index=1.5&size=2', 'index'],
      [`/audit/proof/inclusion?index=${size}&size=${size}`, 'index'],
      [`/audit/proof/inclusion?index=0&size=${size + 1}`, 'size'],
      ['/audit/proof/consistency?from=2&to=1', 'from'],
      [`/audit/proof/consistency?from=0&to=${size + 1}`, 'to'],
      ['/audit/proof/consistency?from=a&to=1', 'from'],
      ['/audit/entries?start=0&end=1001', 'end'],
      [`/audit/entries?start=0&end=${size + 1}`, 'end'],
      ['/audit/entries?start=3&end=2', 'start'],
      ['/audit/entries?end=2', 'start'],
    ];
    for (const [path, parameter] of cases) {
      const res = await get(path);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { parameter: string }).parameter, path).toBe(parameter);
    }
    expect((await get('/audit/nothing')).status).toBe(404);
    expect((await fetch(`${origin}/audit/checkpoint`, { method: 'POST' })).status).toBe(405);
  });
});
