/**
 * The consent tables (docs/consent.md): append-only, like the data-access log. A grant is a row of
 * `consents`; a revocation and an expiry are rows of `consent_events`, at most one of each kind per
 * consent; nothing is ever updated or deleted (triggers; on PostgreSQL the service role may only
 * SELECT and INSERT them, lib/db-roles.ts). The status is derived from these facts and the clock.
 */
import { randomBytes } from 'node:crypto';
import { appendOnly, type Migration } from '../../../lib/db.js';

export const consentMigrations: readonly Migration[] = [
  {
    name: '004_consents',
    async up(knex) {
      await knex.schema.createTable('consents', (t) => {
        // Grant order: the cursor of oversight pages.
        t.increments('seq').primary();
        t.string('id', 64).notNullable().unique();
        t.string('user_id', 64).notNullable().references('users.id');
        t.string('institution_id', 64).notNullable().references('institutions.id');
        // JSON list of ConsentScope values, sorted.
        t.text('scopes').notNullable();
        t.string('purpose', 16).notNullable();
        t.string('disclosure_version', 32).notNullable();
        t.string('granted_at', 32).notNullable();
        t.string('expires_at', 32).notNullable();
        t.string('idempotency_key', 255).notNullable();
        // sha256 of the grant's input: the same key with another input is refused.
        t.string('request_hash', 64).notNullable();
        t.unique(['user_id', 'idempotency_key']);
        t.index(['user_id', 'institution_id']);
        t.index(['institution_id', 'seq']);
      });
      await knex.schema.createTable('consent_events', (t) => {
        t.increments('id').primary();
        t.string('consent_id', 64).notNullable().references('consents.id');
        // REVOKED (the user's act) or EXPIRED (first observed after expires_at).
        t.string('kind', 16).notNullable();
        t.string('at', 32).notNullable();
        t.unique(['consent_id', 'kind']);
      });
      // The key of the per-institution customer pseudonyms (oversight.ts): one per install, random.
      await knex.schema.createTable('pseudonym_keys', (t) => {
        t.integer('id').primary();
        t.string('key_hex', 64).notNullable();
      });
      await knex('pseudonym_keys').insert({ id: 1, key_hex: randomBytes(32).toString('hex') });
      for (const table of ['consents', 'consent_events', 'pseudonym_keys']) await appendOnly(knex, table);
    },
  },
];
