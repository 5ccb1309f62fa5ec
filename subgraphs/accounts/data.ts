/** Data access for the accounts subgraph: its own tables only, plain typed rows out. */
import type { Knex } from 'knex';

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

/** One row of the data-access log (fence layer 5). */
export interface DataAccessRow {
  id: number;
  at: string;
  userId: string | null;
  purpose: string | null;
  client: string | null;
  operationName: string | null;
  operationHash: string;
  coordinates: string[];
  decision: string;
  layer: string;
  requestId: string | null;
  /** The institutions the record concerns, sorted ids (consent records, an oversight caller's); absent: none. */
  institutions?: string[];
}

/** A record to append: a row without its id. */
export type NewDataAccess = Omit<DataAccessRow, 'id'>;

function dataAccessRow(r: NewDataAccess) {
  return {
    at: r.at,
    user_id: r.userId,
    purpose: r.purpose,
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
 * Appends several records, in order, with one multi-row INSERT: one statement, so all of them
 * commit together or none does. Returns their ids, in order.
 */
export async function appendDataAccessBatch(db: Knex, records: readonly NewDataAccess[]): Promise<number[]> {
  if (records.length === 0) return [];
  const rows = (await db('data_access_log').insert(records.map(dataAccessRow)).returning('id')) as unknown[];
  return rows.map((row) => (typeof row === 'object' && row !== null ? Number((row as { id: number }).id) : Number(row)));
}

/** The columns of a record, as DataAccessRow names them (dataAccessOf parses the JSON ones). */
export const DATA_ACCESS_COLUMNS = [
  'id',
  'at',
  'user_id as userId',
  'purpose',
  'client',
  'operation_name as operationName',
  'operation_hash as operationHash',
  'coordinates',
  'decision',
  'layer',
  'request_id as requestId',
  'institutions',
];

/** A user's log, newest first, after the record `afterId` (exclusive); `limit` rows at most. */
export async function dataAccessOfUser(db: Knex, userId: string, limit: number, afterId: number | null): Promise<DataAccessRow[]> {
  const q = db('data_access_log').select(DATA_ACCESS_COLUMNS).where('user_id', userId).orderBy('id', 'desc').limit(limit);
  if (afterId !== null) void q.andWhere('id', '<', afterId);
  return ((await q) as RawDataAccess[]).map(dataAccessOf);
}

export type RawDataAccess = Omit<DataAccessRow, 'coordinates' | 'institutions'> & { coordinates: string; institutions: string | null };

/** A stored row as a record: JSON columns parsed. */
export function dataAccessOf(r: RawDataAccess): DataAccessRow {
  const { institutions, ...rest } = r;
  return {
    ...rest,
    id: Number(r.id),
    coordinates: JSON.parse(r.coordinates) as string[],
    ...(institutions ? { institutions: JSON.parse(institutions) as string[] } : {}),
  };
}

export async function countDataAccessOfUser(db: Knex, userId: string): Promise<number> {
  const row = (await db('data_access_log').where('user_id', userId).count({ n: '*' }).first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}
