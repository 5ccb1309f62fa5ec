/**
 * Tamper evidence: whoever runs the database may lift the append-only triggers (SQLite: drop them;
 * PostgreSQL: DISABLE TRIGGER, as the schema owner) and delete, reorder or rewrite records, even
 * rebuild the tree's stored hashes to match. A witness that saw a checkpoint before then fails
 * (npm run audit:verify, lib/transparency/witness.ts), naming the first bad index when it keeps
 * the entries (--entries); a rewritten leaf no longer passes its inclusion proof. On SQLite in
 * `npm test`, on PostgreSQL in `npm run test:scale`.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isSqlite } from '../../lib/db.js';
import { openCheckpoint, parseVerifierKey, verifierKey } from '../../lib/transparency/checkpoint.js';
import { completedNodes, leafHash, verifyInclusion, type Hash } from '../../lib/transparency/merkle.js';
import { runWitness } from '../../lib/transparency/witness.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

let stack: TestStack;
let origin: string;
let dir: string;
let state: string;
/** The leaves the seeds wrote (their consent records) before the test's own operations. */
let base: number;

/** Audited operations: alternately a payments read (ALLOWED) and an advertising attempt (REFUSED). */
async function operations(n: number): Promise<void> {
  const pay = await stack.token('alice');
  const ads = await stack.token('alice', 'advertising');
  for (let i = 0; i < n; i++) await stack.gql(`query Op${i} { me { accounts { id } } }`, {}, i % 2 ? ads : pay);
}

/** Lifts the append-only triggers of the log and its tree, behind the service's back. */
async function liftTriggers(db: Knex): Promise<void> {
  for (const table of ['data_access_log', 'audit_tree']) {
    if (isSqlite(db)) for (const op of ['update', 'delete']) await db.raw(`DROP TRIGGER IF EXISTS ${table}_no_${op}`);
    else await db.raw(`ALTER TABLE ${table} DISABLE TRIGGER ALL`);
  }
}

/** What a thorough attacker does next: recomputes every stored tree hash from the (changed) leaves. */
async function rebuildTree(db: Knex): Promise<void> {
  const rows = (await db('data_access_log').select('leaf').orderBy('leaf_index')) as { leaf: string }[];
  const nodes = new Map<string, Hash>();
  const out: { level: number; idx: number; hash: string }[] = [];
  rows.forEach((r, i) => {
    for (const { node, hash } of completedNodes(i, leafHash(new TextEncoder().encode(r.leaf)), (n) => nodes.get(`${n.level}/${n.index}`)!)) {
      nodes.set(`${node.level}/${node.index}`, hash);
      out.push({ level: node.level, idx: node.index, hash: Buffer.from(hash).toString('base64') });
    }
  });
  await db('audit_tree').delete();
  for (let i = 0; i < out.length; i += 200) await db('audit_tree').insert(out.slice(i, i + 200));
}

const witness = (entries = true) => runWitness({ url: origin, statePath: state, entries });

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-witness-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeEach(async () => {
  stack = await startTestStack();
  origin = new URL(stack.url).origin;
  state = path.join(dir, `state-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  base = Number(((await stack.dbs.accounts('data_access_log').count({ n: '*' }).first()) as { n: number | string }).n);
  await operations(8);
  // The bank's first run pins the key and keeps the checkpoint and the leaves.
  const first = await witness();
  expect(first, first.message).toMatchObject({ ok: true });
  expect(first.message).toMatch(/first run: key paygraph\.dev\/audit\/[0-9a-f]{16}\+[0-9a-f]{8} pinned/);
});
afterEach(async () => stack?.stop());

describe('the witness (npm run audit:verify)', () => {
  it('verifies an honest log run after run, from the command line too', async () => {
    await operations(3);
    expect(await witness(false)).toMatchObject({
      ok: true,
      message: expect.stringMatching(new RegExp(`^OK paygraph\\.dev/audit/\\w+: ${base + 11} leaves, consistent with the stored checkpoint of ${base + 8}$`)),
    });
    await operations(2);
    const { stdout } = await promisify(execFile)(TSX, ['scripts/audit-verify.ts', '--url', origin, '--state', state, '--entries'], { cwd: ROOT });
    expect(stdout).toMatch(
      new RegExp(`^OK paygraph\\.dev/audit/\\w+: ${base + 13} leaves, consistent with the stored checkpoint of ${base + 11}, every entry re-hashed\n$`),
    );
    await expect(promisify(execFile)(TSX, ['scripts/audit-verify.ts', '--url', origin], { cwd: ROOT })).rejects.toMatchObject({ code: 2 });
  });

  it('fails on a checkpoint signed by another key than the pinned one', async () => {
    const saved = JSON.parse(fs.readFileSync(state, 'utf8')) as { key: string };
    // The pinned key is the true one; the log now signs with another key under the same name.
    saved.key = verifierKey(saved.key.split('+')[0]!, generateKeyPairSync('ed25519').privateKey);
    fs.writeFileSync(state, JSON.stringify(saved));
    expect(await witness()).toMatchObject({
      ok: false,
      message: expect.stringMatching(
        /^FAILED: bad signature: the checkpoint does not verify with the pinned key .* \(no signature by paygraph\.dev\/audit\/\w+\)$/,
      ),
    });
  });

  it('a deleted record (ids renumbered, tree rebuilt) fails the witness, naming its index', async () => {
    const db = stack.adminDb('accounts');
    await liftTriggers(db);
    const victim = (await db('data_access_log')
      .where({ leaf_index: base + 3 })
      .first()) as { id: number };
    await db('data_access_log').where({ id: victim.id }).delete();
    await db('data_access_log')
      .where('leaf_index', '>', base + 3)
      .decrement('leaf_index', 1);
    await rebuildTree(db);
    await operations(2); // the log goes on: a fresh checkpoint
    const copy = `${state}.copy`;
    fs.copyFileSync(state, copy);
    fs.copyFileSync(`${state}.leaves`, `${copy}.leaves`);
    expect(await witness()).toEqual({ ok: false, message: `FAILED: leaf mismatch at index ${base + 3}: its entry is not the leaf verified before` });
    // Without the entries: the tree is not an extension of the one seen before.
    expect(await runWitness({ url: origin, statePath: copy })).toEqual({
      ok: false,
      message: `FAILED: inconsistent tree: the checkpoint of ${base + 9} leaves does not extend the stored one of ${base + 8}`,
    });
  });

  it('reordered records fail the witness, naming the first', async () => {
    const db = stack.adminDb('accounts');
    await liftTriggers(db);
    await db('data_access_log')
      .where({ leaf_index: base + 5 })
      .update({ leaf_index: -1 });
    await db('data_access_log')
      .where({ leaf_index: base + 2 })
      .update({ leaf_index: base + 5 });
    await db('data_access_log')
      .where({ leaf_index: -1 })
      .update({ leaf_index: base + 2 });
    await rebuildTree(db);
    await operations(1);
    expect(await witness()).toEqual({ ok: false, message: `FAILED: leaf mismatch at index ${base + 2}: its entry is not the leaf verified before` });
  });

  it('a refused record rewritten as ALLOWED fails its inclusion proof and the witness', async () => {
    const db = stack.adminDb('accounts');
    await liftTriggers(db);
    const row = (await db('data_access_log')
      .where({ leaf_index: base + 1 })
      .first()) as { id: number; leaf: string; decision: string };
    expect(row.decision).toBe('REFUSED');
    const forged = row.leaf.replace('"decision":"REFUSED"', '"decision":"ALLOWED"');
    await db('data_access_log').where({ id: row.id }).update({ decision: 'ALLOWED', leaf: forged });
    await operations(1);
    // The stored tree still commits to the true leaf: the forged one fails its proof.
    const vkey = parseVerifierKey(await (await fetch(`${origin}/audit/key`)).text());
    const cp = openCheckpoint(await (await fetch(`${origin}/audit/checkpoint`)).text(), vkey);
    const proof = (await (await fetch(`${origin}/audit/proof/inclusion?index=${base + 1}&size=${cp.size}`)).json()) as { hashes: string[] };
    const hashes = proof.hashes.map((h) => new Uint8Array(Buffer.from(h, 'base64')));
    expect(verifyInclusion(base + 1, cp.size, leafHash(new TextEncoder().encode(forged)), hashes, cp.root)).toBe(false);
    expect(verifyInclusion(base + 1, cp.size, leafHash(new TextEncoder().encode(row.leaf)), hashes, cp.root)).toBe(true);
    expect(await witness()).toEqual({ ok: false, message: `FAILED: leaf mismatch at index ${base + 1}: its entry is not the leaf verified before` });
    // A witness without stored leaves finds it too, from the root alone (binary search over consistency proofs).
    const fresh = path.join(dir, `fresh-${Date.now()}.json`);
    const pinned = JSON.parse(fs.readFileSync(state, 'utf8')) as { key: string; checkpoint: string; url: string };
    fs.writeFileSync(fresh, JSON.stringify({ url: pinned.url, key: pinned.key, checkpoint: pinned.checkpoint }));
    expect(await runWitness({ url: origin, statePath: fresh, entries: true })).toEqual({
      ok: false,
      message: `FAILED: leaf mismatch at index ${base + 1}: the entries do not hash to the checkpoint's root`,
    });
  });
});
