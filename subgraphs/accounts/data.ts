/** Data access for the accounts subgraph: its own tables only, plain typed rows out. */
import type { Knex } from 'knex';
import type { DataAccessRecord } from '../../fence/audit-record.js';
import { buildLeaves, frontierOf, insertNodes, lockLog, loggedColumns, treeSize, type LoggedRecord, type TreeHead } from './audit-tree.js';

/** Kinds of institutions that link accounts (the schema's InstitutionKind). */
export type InstitutionKind = 'BANK' | 'CARD_ISSUER';
/** Kinds of linked accounts (the schema's AccountKind). */
export type AccountKind = 'CHECKING' | 'SAVINGS' | 'CREDIT_CARD' | 'DEBIT_CARD';

export interface UserRow {
  id: string;
  handle: string;
  name: string;
  country: string;
}
export interface AccountRow {
  id: string;
  userId: string;
  institutionId: string;
  kind: AccountKind;
  displayName: string;
  mask: string;
  currency: string;
}
export interface InstitutionRow {
  id: string;
  name: string;
  kind: InstitutionKind;
}

const accountColumns = ['id', 'user_id as userId', 'institution_id as institutionId', 'kind', 'display_name as displayName', 'mask', 'currency'];

export function usersByIds(db: Knex, ids: readonly string[]): Promise<UserRow[]> {
  return db('users').select('id', 'handle', 'name', 'country').whereIn('id', ids);
}

export function accountsByIds(db: Knex, ids: readonly string[]): Promise<AccountRow[]> {
  return db('accounts').select(accountColumns).whereIn('id', ids);
}

export function accountsByUserIds(db: Knex, userIds: readonly string[]): Promise<AccountRow[]> {
  return db('accounts').select(accountColumns).whereIn('user_id', userIds).orderBy(['user_id', 'id']);
}

export function institutionsByIds(db: Knex, ids: readonly string[]): Promise<InstitutionRow[]> {
  return db('institutions').select('id', 'name', 'kind').whereIn('id', ids);
}

/** One row of the data-access log (fence layer 5), with its place in the transparency log. */
export interface DataAccessRow {
  id: number;
  at: string;
  userId: string | null;
  purpose: string | null;
  /** The token's issuer (`iss`), verified; null for an anonymous caller and in records before migration 005. */
  issuer: string | null;
  /** The credential's client id (`client_id` / `azp`), verified; null when the token named none. */
  clientId: string | null;
  /** As the caller declared it (`apollographql-client-name`), never verified. */
  client: string | null;
  operationName: string | null;
  operationHash: string;
  coordinates: string[];
  decision: string;
  layer: string;
  /** As the caller declared it (or the gateway's own), never verified. */
  requestId: string | null;
  /** The record's leaf in the transparency log (0-based, append order). */
  leafIndex: number;
  /** The salt of the leaf's subject commitment: private, given only to whom the record is about. */
  salt: string | null;
  subject: string | null;
  institutions: string[];
  count: number;
  marks: string[];
  /** The leaf's canonical JSON. */
  leaf: string;
}

const dataAccessColumns = [
  'id',
  'at',
  'user_id as userId',
  'purpose',
  'issuer',
  'credential_client_id as clientId',
  'client',
  'operation_name as operationName',
  'operation_hash as operationHash',
  'coordinates',
  'decision',
  'layer',
  'request_id as requestId',
  'leaf_index as leafIndex',
  'salt',
  'subject',
  'institutions',
  'count',
  'marks',
  'leaf',
];

type RawDataAccessRow = Omit<DataAccessRow, 'coordinates' | 'institutions' | 'marks'> & {
  coordinates: string;
  institutions: string | null;
  marks: string | null;
};

function dataAccessRowOf(r: RawDataAccessRow): DataAccessRow {
  return {
    ...r,
    id: Number(r.id),
    leafIndex: Number(r.leafIndex),
    count: Number(r.count ?? 1),
    coordinates: JSON.parse(r.coordinates) as string[],
    institutions: r.institutions ? (JSON.parse(r.institutions) as string[]) : [],
    marks: r.marks ? (JSON.parse(r.marks) as string[]) : [],
  };
}

/** A record's own columns of its data_access_log row (beside audit-tree.ts loggedColumns); also the bench's seeder's (bench/audit-seed.ts). */
export function dataAccessRow(r: DataAccessRecord) {
  return {
    at: r.at,
    user_id: r.userId,
    purpose: r.purpose,
    issuer: r.issuer ?? null,
    credential_client_id: r.clientId ?? null,
    client: r.client,
    operation_name: r.operationName,
    operation_hash: r.operationHash,
    coordinates: JSON.stringify(r.coordinates),
    decision: r.decision,
    layer: r.layer,
    request_id: r.requestId,
    institutions: r.institutions?.length ? JSON.stringify([...new Set(r.institutions)].sort()) : null,
  };
}

/**
 * Appends several records, in order, in one transaction: their rows (one multi-row INSERT), each
 * the next leaf of the transparency log, and the tree nodes they complete (audit-tree.ts). All of
 * it commits together or none does. Returns the records as logged (ids, leaf indexes, salts).
 * `head` is this process's last committed tree head (audit-tree.ts TreeHead), updated on commit:
 * while the stored tree still has its size, an append does not read the tree's edge back; should
 * the append fail anyway (a stale edge colliding with a stored node), it is retried once from
 * what the database holds.
 */
export async function appendDataAccessBatch(
  db: Knex,
  records: readonly { record: DataAccessRecord; marks: string[] }[],
  head: { current: TreeHead | null } = { current: null },
): Promise<(LoggedRecord & { id: number })[]> {
  if (records.length === 0) return [];
  const attempt = (cached: TreeHead | null) =>
    db.transaction(async (trx) => {
      await lockLog(trx);
      // The size is always read (one indexed MAX): the cached edge is used only while it is the stored tree's.
      const start = await treeSize(trx);
      const known = cached?.size === start ? cached : null;
      const built = await buildLeaves(trx, start, records, known ? known.frontier : await frontierOf(trx, start));
      const rows = (await trx('data_access_log')
        .insert(built.logged.map((l) => ({ ...dataAccessRow(l.record), ...loggedColumns(l) })))
        .returning('id')) as unknown[];
      await insertNodes(trx, built.nodes);
      const logged = built.logged.map((l, i) => {
        const row = rows[i];
        return { ...l, id: typeof row === 'object' && row !== null ? Number((row as { id: number }).id) : Number(row) };
      });
      return { logged, head: built.head };
    });
  let done;
  try {
    done = await attempt(head.current);
  } catch (err) {
    if (!head.current) throw err;
    head.current = null;
    done = await attempt(null);
  }
  head.current = done.head;
  return done.logged;
}

/** A record written by the accounts subgraph itself (consent decisions: consent/), not by the gateway. */
export type NewDataAccess = DataAccessRecord;

/** Appends records built here (bounded by construction: no marks) as appendDataAccessBatch does. */
export function appendOwnRecords(db: Knex, records: readonly NewDataAccess[]) {
  return appendDataAccessBatch(
    db,
    records.map((record) => ({ record, marks: [] })),
  );
}

/** The columns of a logged record, and a stored row as one (for queries built elsewhere: consent/oversight.ts). */
export { dataAccessColumns as DATA_ACCESS_COLUMNS, dataAccessRowOf as dataAccessOf, type RawDataAccessRow as RawDataAccess };

/** A user's log, newest first, after the record `afterId` (exclusive); `limit` rows at most. */
export async function dataAccessOfUser(db: Knex, userId: string, limit: number, afterId: number | null): Promise<DataAccessRow[]> {
  const q = db('data_access_log').select(dataAccessColumns).where('user_id', userId).orderBy('id', 'desc').limit(limit);
  if (afterId !== null) void q.andWhere('id', '<', afterId);
  return ((await q) as RawDataAccessRow[]).map(dataAccessRowOf);
}

export async function countDataAccessOfUser(db: Knex, userId: string): Promise<number> {
  const row = (await db('data_access_log').where('user_id', userId).count({ n: '*' }).first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/**
 * The records whose operations touched data of `institutionId`'s customers, oldest first, after
 * leaf `after` (exclusive), `first` at most: with their leaf indexes and salts, for that bank's
 * oversight credential (docs/audit.md), which checks each against the public log. The institutions
 * are kept as a sorted JSON list per record; the match is on its quoted id.
 */
export async function recordsTouchingInstitution(db: Knex, institutionId: string, page: { first: number; after?: number | null }): Promise<DataAccessRow[]> {
  const q = db('data_access_log')
    .select(dataAccessColumns)
    .whereRaw("institutions LIKE ? ESCAPE '!'", [`%${JSON.stringify(institutionId).replace(/[!%_]/g, (c) => `!${c}`)}%`])
    .orderBy('leaf_index')
    .limit(page.first);
  if (page.after !== null && page.after !== undefined) void q.andWhere('leaf_index', '>', page.after);
  return ((await q) as RawDataAccessRow[]).map(dataAccessRowOf);
}

/** Leaves [start, end) of the log, in order (what /audit/entries serves). */
export async function auditLeaves(db: Knex, start: number, end: number): Promise<{ index: number; leaf: string }[]> {
  const rows = (await db('data_access_log')
    .select('leaf_index', 'leaf')
    .where('leaf_index', '>=', start)
    .andWhere('leaf_index', '<', end)
    .orderBy('leaf_index')) as {
    leaf_index: number | string;
    leaf: string;
  }[];
  return rows.map((r) => ({ index: Number(r.leaf_index), leaf: r.leaf }));
}
