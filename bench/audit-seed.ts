/**
 * The bench's fast path to a large audit log (`npm run bench -- --scale`, the proof curve): writes
 * data-access records straight into an accounts database, with their leaves and the RFC 6962 tree
 * nodes they complete, in large batches (one transaction per batch, multi-row INSERTs), hashing in
 * this process. It goes through the service's own pieces, so the rows are what the service writes
 * and its proofs and /audit/entries work on them: the leaves and nodes from audit-tree.ts
 * buildLeaves (lib/transparency/merkle.ts completedNodes), the columns from data.ts dataAccessRow
 * and audit-tree.ts loggedColumns, the append lock from audit-tree.ts lockLog. Only the per-append
 * round trips of appendDataAccessBatch are skipped: the tree's right edge is carried from batch to
 * batch instead of read back.
 *
 * seedAuditLog then checks what it wrote: the stored tree's root, and an inclusion proof of a random
 * seeded leaf, rebuilt from stored nodes, verified against that root. It throws otherwise.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { insertRows } from '../lib/db.js';
import { inclusionProof, leafHash, rootHash, verifyInclusion, type Hash } from '../lib/transparency/merkle.js';
import { leafBytes } from '../lib/transparency/leaf.js';
import type { DataAccessRecord } from '../fence/audit-record.js';
import { buildLeaves, frontierOf, lockLog, loggedColumns, storedNodes, treeSize } from '../subgraphs/accounts/audit-tree.js';
import { dataAccessRow } from '../subgraphs/accounts/data.js';

/**
 * Records per transaction (one buildLeaves call): large enough that statements are few, small
 * enough that the stack's own writers (one SQLite connection) and its event loop are not held long.
 */
const BATCH = 5_000;
/** Rows per INSERT: data_access_log has 18 columns (18,000 bindings, under SQLite's 32,766); audit_tree 3. */
const LOG_ROWS = 1_000;
const NODE_ROWS = 5_000;

const OPERATION = 'query Balances { me { accounts { id balance { current { amount } } } } }';
const OPERATION_HASH = createHash('sha256').update(OPERATION).digest('hex');

/** The i-th seeded record: what the gateway logs for a user's balances read (nine in ten), or a refused anonymous attempt. */
function record(i: number, at: string): DataAccessRecord {
  const refused = i % 10 === 9;
  return {
    at,
    userId: refused ? null : `usr_seed${String(i % 1000).padStart(4, '0')}`,
    purpose: refused ? null : 'payments',
    client: 'bench-seed',
    operationName: 'Balances',
    operationHash: OPERATION_HASH,
    coordinates: ['Account.balance', 'User.accounts'],
    decision: refused ? 'REFUSED' : 'ALLOWED',
    layer: 'gateway',
    requestId: `seed-${i}`,
    // Given, so buildLeaves does not look the seeded users' accounts up.
    institutions: refused ? [] : ['ins_chase'],
    ...(refused ? { reason: 'UNAUTHENTICATED' } : {}),
  };
}

async function chunks(trx: Knex.Transaction, table: string, rows: Record<string, unknown>[], size: number): Promise<void> {
  for (let i = 0; i < rows.length; i += size) await insertRows(trx, table, rows.slice(i, i + size));
}

export interface SeededLog {
  /** The tree's size after seeding. */
  size: number;
  /** Records this call wrote. */
  added: number;
  seconds: number;
  recordsPerSecond: number;
  /** The stored tree's root at `size` (base64). */
  root: string;
}

/**
 * Grows the data-access log of accounts database `db` to `target` records (what it holds already
 * stays: the seeded records follow it), then verifies a proof from the stored tree (see above).
 */
export async function seedAuditLog(db: Knex, target: number, progress: (m: string) => void = () => undefined): Promise<SeededLog> {
  const t0 = Date.now();
  const first = await treeSize(db);
  let frontier: Map<string, Hash> | null = null;
  let size = first;
  let lastReport = Date.now();
  while (size < target) {
    const n = Math.min(BATCH, target - size);
    const at = new Date(Date.parse('2026-01-01T00:00:00.000Z') + size * 1000).toISOString();
    const records = Array.from({ length: n }, (_, k) => ({ record: record(size + k, at), marks: [] as string[] }));
    size = await db.transaction(async (trx) => {
      await lockLog(trx);
      const start = await treeSize(trx);
      // Another writer appended since the last batch (the stack serves requests): its edge is read back.
      if (frontier === null || start !== size) frontier = await frontierOf(trx, start);
      const built = await buildLeaves(trx, start, records, frontier);
      await chunks(
        trx,
        'data_access_log',
        built.logged.map((l) => ({ ...dataAccessRow(l.record), ...loggedColumns(l) })),
        LOG_ROWS,
      );
      await chunks(trx, 'audit_tree', built.nodes, NODE_ROWS);
      frontier = built.head.frontier;
      return built.head.size;
    });
    if (Date.now() - lastReport > 5_000 || size >= target) {
      lastReport = Date.now();
      const s = (Date.now() - t0) / 1000;
      progress(
        `    audit log: ${size.toLocaleString('en-US')} / ${target.toLocaleString('en-US')} records, ${s.toFixed(1)} s (${((size - first) / s).toFixed(0)} records/s)`,
      );
    }
  }
  const seconds = (Date.now() - t0) / 1000;

  // The check: a random seeded leaf (its stored text re-hashed), its proof from stored nodes, the stored root.
  const read = storedNodes(db);
  const root = await rootHash(size, read);
  const index = first + Math.floor(Math.random() * Math.max(1, size - first));
  const row = (await db('data_access_log').select('leaf').where('leaf_index', index).first()) as { leaf: string } | undefined;
  if (!row) throw new Error(`audit seed: leaf ${index} is not in data_access_log`);
  const leaf = leafHash(leafBytes(row.leaf));
  const proof = await inclusionProof(index, size, read);
  if (!verifyInclusion(index, size, leaf, proof, root))
    throw new Error(`audit seed: the proof of leaf ${index} in the seeded tree of ${size} does not verify against its root`);
  return { size, added: size - first, seconds, recordsPerSecond: (size - first) / Math.max(seconds, 1e-3), root: Buffer.from(root).toString('base64') };
}
