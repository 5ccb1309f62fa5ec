/**
 * Loading the demo fixture (fixture.ts) into each subgraph's own, freshly migrated, empty tables:
 * what `npm start` and the tests seed. Each loader writes one subgraph's tables and nothing else;
 * the subgraphs themselves know nothing of demo data.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { SubgraphName } from '../lib/config.js';
import { appendOwnRecords, type NewDataAccess } from '../subgraphs/accounts/data.js';
import type { Fixture } from './fixture.js';

export interface SubgraphSeed {
  /** Inserts this subgraph's share of the fixture (inside the caller's transaction). */
  load(db: Knex, fixture: Fixture): Promise<void>;
  /**
   * A table the seed always fills (null when it inserts nothing): a database migrated before seeds
   * were marked (runtime/database.ts seedOnce) counts as seeded when it has rows.
   */
  table: string | null;
}

async function seedAccounts(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert(
    'institutions',
    f.institutions.map((i) => ({ id: i.id, name: i.name, kind: i.kind })),
    200,
  );
  await db.batchInsert(
    'users',
    f.users.map((u) => ({ id: u.id, handle: u.handle, name: u.name, country: u.country })),
    200,
  );
  await db.batchInsert(
    'accounts',
    f.accounts.map((a) => ({
      id: a.id,
      user_id: a.userId,
      institution_id: a.institutionId,
      kind: a.kind,
      display_name: a.displayName,
      mask: a.mask,
      currency: a.currency,
    })),
    200,
  );
  await seedConsents(db, f);
}

/**
 * The seeded consents (append-only facts: the grant, then dave's revocation) and, as for every
 * grant and revocation, their data-access records, with the institution.
 */
async function seedConsents(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert(
    'consents',
    f.consents.map((c) => ({
      id: c.id,
      user_id: c.userId,
      institution_id: c.institutionId,
      scopes: JSON.stringify(c.scopes),
      purpose: 'PAYMENTS',
      disclosure_version: c.disclosureVersion,
      granted_at: c.grantedAt,
      expires_at: c.expiresAt,
      idempotency_key: `seed-${c.id}`,
      request_hash: createHash('sha256').update(c.id).digest('hex'),
    })),
    200,
  );
  const revoked = f.consents.filter((c) => c.revokedAt);
  if (revoked.length)
    await db.batchInsert(
      'consent_events',
      revoked.map((c) => ({ consent_id: c.id, kind: 'REVOKED', at: c.revokedAt })),
      200,
    );
  // The seeded grants and revocation are audit records like any other: leaves of the transparency
  // log, appended through the accounts subgraph's own append (tree hashes in the same transaction).
  const record = (c: Fixture['consents'][number], at: string, layer: string, coordinate: string): NewDataAccess => ({
    at,
    userId: c.userId,
    purpose: 'payments',
    client: 'seed',
    operationName: null,
    operationHash: createHash('sha256').update('seed').digest('hex'),
    coordinates: [coordinate],
    decision: 'ALLOWED',
    layer,
    requestId: null,
    institutions: [c.institutionId],
  });
  await appendOwnRecords(db, [
    ...f.consents.map((c) => record(c, c.grantedAt, 'consent-grant', 'Mutation.grantConsent')),
    ...revoked.map((c) => record(c, c.revokedAt!, 'consent-revoke', 'Mutation.revokeConsent')),
  ]);
}

async function seedPayments(db: Knex, f: Fixture): Promise<void> {
  const balances = new Map<string, bigint>();
  const merchants = new Map(f.merchants.map((m) => [m.id, m]));
  for (const e of f.entries) for (const p of e.postings) balances.set(p.accountId, (balances.get(p.accountId) ?? 0n) + p.amountMinor);
  await db.transaction(async (trx) => {
    await trx.batchInsert(
      'parties',
      f.users.map((u) => ({ user_id: u.id, handle: u.handle, country: u.country })),
      200,
    );
    const ledgerAccounts: Record<string, unknown>[] = [
      ...f.accounts.map((a) => ({
        id: a.id,
        owner_user_id: a.userId,
        kind: a.kind,
        currency: a.currency,
        credit_limit_minor: a.creditLimitMinor?.toString() ?? null,
        frozen: false,
        balance_minor: (balances.get(a.id) ?? 0n).toString(),
        merchant_id: null,
      })),
      ...f.systemAccounts.map((s) => {
        // Settlement accounts carry the merchant's directory data, for purchase events.
        const m = s.merchantId ? merchants.get(s.merchantId) : undefined;
        return {
          id: s.id,
          owner_user_id: null,
          kind: s.kind,
          currency: s.currency,
          credit_limit_minor: null,
          frozen: false,
          balance_minor: (balances.get(s.id) ?? 0n).toString(),
          merchant_id: s.merchantId,
          merchant_name: m?.name ?? null,
          merchant_category: m?.category ?? null,
          merchant_country: m?.country ?? null,
          merchant_mcc: m?.mcc ?? null,
        };
      }),
    ];
    await trx.batchInsert('ledger_accounts', ledgerAccounts, 200);
    await trx.batchInsert(
      'journal_entries',
      f.entries.map((e) => ({ id: e.id, kind: e.kind, description: e.description, posted_at: e.postedAt })),
      200,
    );
    await trx.batchInsert(
      'postings',
      f.entries.flatMap((e) =>
        e.postings.map((p) => ({
          entry_id: e.id,
          account_id: p.accountId,
          amount_minor: p.amountMinor.toString(),
          currency: 'USD',
          posted_at: e.postedAt,
          merchant_id: p.merchantId ?? null,
          counterparty_user_id: p.counterpartyUserId ?? null,
        })),
      ),
      200,
    );
  });
}

async function seedMerchants(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert(
    'merchants',
    f.merchants.map((m) => ({ id: m.id, name: m.name, category: m.category, mcc: m.mcc, country: m.country, city: m.city })),
    200,
  );
}

async function seedAds(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert(
    'offers',
    f.offers.map((o) => ({ id: o.id, headline: o.headline, merchant_id: o.merchantId, topic: o.topic })),
    200,
  );
  await db.batchInsert(
    'interests',
    f.users.flatMap((u) => u.interests.map((topic) => ({ user_id: u.id, topic }))),
    200,
  );
}

export const SEEDS: Readonly<Record<SubgraphName, SubgraphSeed>> = {
  accounts: { load: seedAccounts, table: 'users' },
  payments: { load: seedPayments, table: 'journal_entries' },
  merchants: { load: seedMerchants, table: 'merchants' },
  // Alerts are raised by the rules from payment events: nothing to seed.
  alerts: { load: async () => undefined, table: null },
  ads: { load: seedAds, table: 'offers' },
};
