/**
 * Consent data access (the accounts subgraph's own tables, migrations.ts): grants, revocations and
 * expiries are inserted, never updated. Plain typed rows out; the rules are rules.ts's.
 */
import type { Knex } from 'knex';
import type { ConsentScope } from './rules.js';

export interface ConsentRow {
  seq: number;
  id: string;
  userId: string;
  institutionId: string;
  scopes: ConsentScope[];
  purpose: 'PAYMENTS';
  disclosureVersion: string;
  grantedAt: string;
  expiresAt: string;
  idempotencyKey: string;
  requestHash: string;
  /** The revocation fact, if any. */
  revokedAt: string | null;
  /** Whether the expiry was already recorded (first observed). */
  expiryRecorded: boolean;
}

export type NewConsent = Omit<ConsentRow, 'seq' | 'revokedAt' | 'expiryRecorded'>;

interface RawConsent {
  seq: number | string;
  id: string;
  userId: string;
  institutionId: string;
  scopes: string;
  purpose: 'PAYMENTS';
  disclosureVersion: string;
  grantedAt: string;
  expiresAt: string;
  idempotencyKey: string;
  requestHash: string;
  revokedAt: string | null;
  expiredAt: string | null;
}

/** Every consent column, with its revocation and expiry facts joined (at most one of each). */
function consentQuery(db: Knex) {
  return db('consents as c')
    .leftJoin('consent_events as r', function () {
      this.on('r.consent_id', '=', 'c.id').andOn('r.kind', '=', db.raw('?', ['REVOKED']));
    })
    .leftJoin('consent_events as e', function () {
      this.on('e.consent_id', '=', 'c.id').andOn('e.kind', '=', db.raw('?', ['EXPIRED']));
    })
    .select(
      'c.seq',
      'c.id',
      'c.user_id as userId',
      'c.institution_id as institutionId',
      'c.scopes',
      'c.purpose',
      'c.disclosure_version as disclosureVersion',
      'c.granted_at as grantedAt',
      'c.expires_at as expiresAt',
      'c.idempotency_key as idempotencyKey',
      'c.request_hash as requestHash',
      'r.at as revokedAt',
      'e.at as expiredAt',
    );
}

function row(r: RawConsent): ConsentRow {
  const { expiredAt, ...rest } = r;
  return { ...rest, seq: Number(r.seq), scopes: JSON.parse(r.scopes) as ConsentScope[], expiryRecorded: expiredAt !== null };
}

/** Every consent of these users, newest first. */
export async function consentsOfUsers(db: Knex, userIds: readonly string[]): Promise<ConsentRow[]> {
  const rows = (await consentQuery(db).whereIn('c.user_id', userIds).orderBy('c.seq', 'desc')) as RawConsent[];
  return rows.map(row);
}

export async function consentById(db: Knex, id: string): Promise<ConsentRow | null> {
  const r = (await consentQuery(db).where('c.id', id).first()) as RawConsent | undefined;
  return r ? row(r) : null;
}

export async function consentByKey(db: Knex, userId: string, idempotencyKey: string): Promise<ConsentRow | null> {
  const r = (await consentQuery(db).where({ 'c.user_id': userId, 'c.idempotency_key': idempotencyKey }).first()) as RawConsent | undefined;
  return r ? row(r) : null;
}

/** An institution's consents, newest first, before grant number `beforeSeq` (exclusive); `limit` at most. */
export async function consentsOfInstitution(db: Knex, institutionId: string, limit: number, beforeSeq: number | null): Promise<ConsentRow[]> {
  const q = consentQuery(db).where('c.institution_id', institutionId).orderBy('c.seq', 'desc').limit(limit);
  if (beforeSeq !== null) void q.andWhere('c.seq', '<', beforeSeq);
  return ((await q) as RawConsent[]).map(row);
}

/** Inserts a grant; false when the (user, idempotency key) pair already exists (a racing duplicate). */
export async function insertConsent(db: Knex, c: NewConsent): Promise<boolean> {
  const inserted = (await db('consents')
    .insert({
      id: c.id,
      user_id: c.userId,
      institution_id: c.institutionId,
      scopes: JSON.stringify(c.scopes),
      purpose: c.purpose,
      disclosure_version: c.disclosureVersion,
      granted_at: c.grantedAt,
      expires_at: c.expiresAt,
      idempotency_key: c.idempotencyKey,
      request_hash: c.requestHash,
    })
    .onConflict(['user_id', 'idempotency_key'])
    .ignore()
    .returning('id')) as unknown[];
  return inserted.length > 0;
}

/**
 * Records a revocation or an expiry, once: false when that fact was already recorded (by this
 * request or any other process), so exactly one caller audits it.
 */
export async function insertConsentEvent(db: Knex, consentId: string, kind: 'REVOKED' | 'EXPIRED', at: string): Promise<boolean> {
  const inserted = (await db('consent_events')
    .insert({ consent_id: consentId, kind, at })
    .onConflict(['consent_id', 'kind'])
    .ignore()
    .returning('id')) as unknown[];
  return inserted.length > 0;
}

/** The install's pseudonym key (migration 003), hex. */
export async function pseudonymKey(db: Knex): Promise<string> {
  const r = (await db('pseudonym_keys').where({ id: 1 }).first('key_hex')) as { key_hex: string } | undefined;
  if (!r) throw new Error('pseudonym key missing: run the accounts migrations');
  return r.key_hex;
}
