/**
 * The audit log as a transparency log, in the accounts database: each data-access record gets its
 * leaf (lib/transparency/leaf.ts) and index, and the hashes of the RFC 6962 subtrees it completes
 * go to `audit_tree`, in the same transaction as the records (lib/transparency/merkle.ts
 * completedNodes). Appends are serialised (one writer at a time: SQLite by its single connection,
 * PostgreSQL by a transaction-scoped advisory lock), so leaf indexes have no gaps and every proof
 * is built from O(log n) stored nodes.
 */
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { completedNodes, leafHash, rangeNodes, type Hash, type NodeId, type NodeReader } from '../../lib/transparency/merkle.js';
import { leafBytes, leafText, newSalt, subjectCommitment, type AuditLeaf } from '../../lib/transparency/leaf.js';
import type { DataAccessRecord } from '../../fence/audit-record.js';

/** Key of the PostgreSQL advisory lock that serialises appends (any constant: only this log takes it). */
const APPEND_LOCK = 6962_0001;

/** Coordinates that read or move a linked account's data: their records name the user's institutions. */
const BANK_DATA = /^(Account\.|User\.accounts$|Query\.account$|Mutation\.(sendTransfer|makePurchase)$)/;

export const touchesBankData = (coordinates: readonly string[]): boolean => coordinates.some((c) => BANK_DATA.test(c));

/**
 * The tree's size and right edge as this process last committed them: what the next append
 * builds on without reading the edge back, while the stored tree has that size (audit-log.ts
 * keeps one per process; another process's append changes the size, and the edge is re-read).
 */
export interface TreeHead {
  size: number;
  frontier: Map<string, Hash>;
}

/** A record with what the log adds: its leaf, subject, salt and index. */
export interface LoggedRecord {
  record: DataAccessRecord;
  marks: string[];
  leafIndex: number;
  salt: string | null;
  subject: string | null;
  institutions: string[];
  leaf: string;
  hash: Hash;
}

const b64 = (h: Hash) => Buffer.from(h).toString('base64');
const unb64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));
const nodeKey = (n: NodeId) => `${n.level}/${n.index}`;

/** Reads stored nodes, in the order asked (one query). */
export function storedNodes(db: Knex): NodeReader {
  return async (nodes) => {
    if (nodes.length === 0) return [];
    const rows = (await db('audit_tree')
      .select('level', 'idx', 'hash')
      .where((q) => {
        for (const n of nodes) void q.orWhere({ level: n.level, idx: n.index });
      })) as { level: number; idx: number | string; hash: string }[];
    const byKey = new Map(rows.map((r) => [`${Number(r.level)}/${Number(r.idx)}`, r.hash]));
    return nodes.map((n) => {
      const h = byKey.get(nodeKey(n));
      if (h === undefined) throw new Error(`audit tree node (${n.level}, ${n.index}) is missing`);
      return unb64(h);
    });
  };
}

/** How many leaves the log has: one past the highest leaf index. */
export async function treeSize(db: Knex): Promise<number> {
  const row = (await db('data_access_log').max({ n: 'leaf_index' }).first()) as { n: number | string | null } | undefined;
  return row?.n === null || row?.n === undefined ? 0 : Number(row.n) + 1;
}

/** The institutions of each user's linked accounts, sorted. */
async function institutionsOfUsers(db: Knex, userIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (userIds.length === 0) return out;
  const rows = (await db('accounts').distinct('user_id', 'institution_id').whereIn('user_id', userIds)) as { user_id: string; institution_id: string }[];
  for (const r of rows) out.set(r.user_id, [...(out.get(r.user_id) ?? []), r.institution_id]);
  for (const list of out.values()) list.sort();
  return out;
}

/**
 * Builds the leaves of `records` from index `start` on, and the tree nodes they complete given the
 * tree's right edge before them (`frontier`: rangeNodes(0, start) with their hashes).
 */
export async function buildLeaves(
  db: Knex,
  start: number,
  records: readonly { record: DataAccessRecord; marks: string[]; salt?: string }[],
  frontier: Map<string, Hash>,
): Promise<{ logged: LoggedRecord[]; nodes: { level: number; idx: number; hash: string }[]; head: TreeHead }> {
  const needInstitutions = records.filter((r) => r.record.institutions === undefined && r.record.userId && touchesBankData(r.record.coordinates));
  const byUser = await institutionsOfUsers(db, [...new Set(needInstitutions.map((r) => r.record.userId!))]);
  const known = new Map(frontier);
  const nodes: { level: number; idx: number; hash: string }[] = [];
  const logged = records.map(({ record, marks, salt: given }, i): LoggedRecord => {
    const salt = record.userId ? (given ?? newSalt()) : null;
    const subject = record.userId && salt ? subjectCommitment(salt, record.userId) : null;
    const institutions = record.institutions ?? (record.userId && touchesBankData(record.coordinates) ? (byUser.get(record.userId) ?? []) : []);
    const leaf: AuditLeaf = {
      v: 2,
      at: record.at,
      subject,
      purpose: record.purpose,
      issuer: record.issuer ?? null,
      clientId: record.clientId ?? null,
      coordinates: [...record.coordinates].sort(),
      decision: record.decision,
      reason: record.decision === 'REFUSED' ? (record.reason ?? null) : null,
      layer: record.layer,
      operationHash: record.operationHash,
      operationName: record.operationName,
      institutions: [...new Set(institutions)].sort(),
      count: record.count ?? 1,
      marks,
    };
    const text = leafText(leaf);
    const hash = leafHash(leafBytes(text));
    const leafIndex = start + i;
    for (const { node, hash: h } of completedNodes(leafIndex, hash, (n) => known.get(nodeKey(n))!)) {
      known.set(nodeKey(node), h);
      nodes.push({ level: node.level, idx: node.index, hash: b64(h) });
    }
    return { record, marks, leafIndex, salt, subject, institutions: leaf.institutions, leaf: text, hash };
  });
  const size = start + logged.length;
  const edge = size === 0 ? [] : rangeNodes(0, size);
  return { logged, nodes, head: { size, frontier: new Map(edge.map((n) => [nodeKey(n), known.get(nodeKey(n))!])) } };
}

/** The hashes of the tree's right edge at `size` (what the next append builds on), by node key. */
export async function frontierOf(db: Knex, size: number): Promise<Map<string, Hash>> {
  if (size === 0) return new Map();
  const ids = rangeNodes(0, size);
  const hashes = await storedNodes(db)(ids);
  return new Map(ids.map((n, i) => [nodeKey(n), hashes[i]!]));
}

/** Takes the log's append lock for the rest of `trx` (PostgreSQL; SQLite has one writer already). */
export async function lockLog(trx: Knex.Transaction): Promise<void> {
  if (!isSqlite(trx)) await trx.raw('SELECT pg_advisory_xact_lock(?)', [APPEND_LOCK]);
}

/** The columns a logged record adds to its data_access_log row. */
export function loggedColumns(l: LoggedRecord) {
  return {
    leaf_index: l.leafIndex,
    subject: l.subject,
    salt: l.salt,
    institutions: JSON.stringify(l.institutions),
    count: l.record.count ?? 1,
    marks: JSON.stringify(l.marks),
    leaf: l.leaf,
  };
}

/** Inserts tree nodes in chunks (bind-variable limits). */
export async function insertNodes(trx: Knex, nodes: { level: number; idx: number; hash: string }[]): Promise<void> {
  for (let i = 0; i < nodes.length; i += 300) await trx('audit_tree').insert(nodes.slice(i, i + 300));
}
