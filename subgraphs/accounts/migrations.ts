import { appendOnly, isSqlite, type Migration } from '../../lib/db.js';
import { backfillAuditLog } from './audit-backfill.js';
import { consentMigrations } from './consent/migrations.js';

export const migrations: readonly Migration[] = [
  {
    name: '001_accounts',
    async up(knex) {
      await knex.schema.createTable('institutions', (t) => {
        t.string('id', 64).primary();
        t.string('name', 200).notNullable();
        t.string('kind', 16).notNullable();
      });
      await knex.schema.createTable('users', (t) => {
        t.string('id', 64).primary();
        t.string('handle', 64).notNullable().unique();
        t.string('name', 200).notNullable();
        t.string('country', 2).notNullable();
      });
      await knex.schema.createTable('accounts', (t) => {
        t.string('id', 64).primary();
        t.string('user_id', 64).notNullable().references('users.id');
        t.string('institution_id', 64).notNullable().references('institutions.id');
        t.string('kind', 16).notNullable();
        t.string('display_name', 200).notNullable();
        t.string('mask', 4).notNullable();
        t.string('currency', 3).notNullable();
        t.index(['user_id']);
      });
    },
  },
  {
    name: '002_data_access_log',
    async up(knex) {
      // Fence layer 5: one row per operation that touched payment-only data, allowed or refused.
      await knex.schema.createTable('data_access_log', (t) => {
        t.increments('id').primary();
        t.string('at', 32).notNullable();
        // No foreign key: anonymous refused attempts have no user, and a log row outlives nothing.
        t.string('user_id', 64).nullable();
        t.string('purpose', 16).nullable();
        t.string('client', 100).nullable();
        t.string('operation_name', 200).nullable();
        t.string('operation_hash', 64).notNullable();
        t.text('coordinates').notNullable();
        t.string('decision', 16).notNullable();
        t.string('layer', 32).notNullable();
        t.string('request_id', 64).nullable();
        t.index(['user_id', 'id']);
      });
      await appendOnly(knex, 'data_access_log');
    },
  },
  {
    name: '003_audit_transparency_log',
    async up(knex) {
      // The transparency log (docs/audit.md): each record is leaf `leaf_index` (0-based, append
      // order, no gaps) of an RFC 6962 tree; `leaf` is its canonical JSON (what /audit/entries
      // serves), `subject` the salted commitment to the user, `salt` private (given to the user only).
      await knex.schema.alterTable('data_access_log', (t) => {
        t.bigInteger('leaf_index').nullable().unique();
        t.string('subject', 43).nullable();
        t.string('salt', 22).nullable();
        t.text('institutions').nullable();
        t.integer('count').nullable();
        t.text('marks').nullable();
        t.text('leaf').nullable();
      });
      // The stored hashes of the tree's complete subtrees: node (level, idx) is the root of leaves
      // [idx·2^level, (idx+1)·2^level). Written in the same transaction as the records they cover.
      await knex.schema.createTable('audit_tree', (t) => {
        t.integer('level').notNullable();
        t.bigInteger('idx').notNullable();
        t.string('hash', 44).notNullable();
        t.primary(['level', 'idx']);
      });
      await appendOnly(knex, 'audit_tree');
      // Records written before this migration become the first leaves (the triggers are lifted
      // for this one statement of the owner's migration, and put back).
      await backfillAuditLog(knex, isSqlite(knex));
    },
  },
  // Consents (docs/consent.md): their own tables, after the transparency log.
  ...consentMigrations,
  {
    name: '005_audit_verified_identity',
    async up(knex) {
      // The verified identity beside the user and purpose (lib/auth.ts Caller): the token's issuer
      // and the credential's client id, kept apart from the declared `client` and `request_id`.
      // Null in older rows (their leaves are format v1, which did not carry them).
      await knex.schema.alterTable('data_access_log', (t) => {
        t.string('issuer', 200).nullable();
        t.string('credential_client_id', 100).nullable();
      });
    },
  },
];
