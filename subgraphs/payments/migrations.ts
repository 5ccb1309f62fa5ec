import type { Knex } from 'knex';
import type { Migration } from '../../lib/db.js';
import { isSqlite } from '../../lib/db.js';

/** Posted ledger rows are append-only, enforced by the database itself. */
async function appendOnly(knex: Knex, table: string): Promise<void> {
  if (isSqlite(knex)) {
    for (const op of ['UPDATE', 'DELETE']) {
      await knex.raw(`CREATE TRIGGER ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`);
    }
  } else {
    await knex.raw(`CREATE OR REPLACE FUNCTION paygraph_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql`);
    await knex.raw(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION paygraph_append_only()`);
  }
}

export const migrations: readonly Migration[] = [
  {
    name: '001_ledger',
    async up(knex) {
      await knex.schema.createTable('parties', (t) => {
        t.string('user_id', 64).primary();
        t.string('handle', 64).notNullable().unique();
        t.string('country', 2).notNullable();
      });
      await knex.schema.createTable('ledger_accounts', (t) => {
        t.string('id', 64).primary();
        t.string('owner_user_id', 64).nullable().references('parties.user_id');
        t.string('kind', 16).notNullable();
        t.string('currency', 3).notNullable();
        t.bigInteger('credit_limit_minor').nullable();
        t.boolean('frozen').notNullable().defaultTo(false);
        /** Cached sum of postings, written in the same transaction as the postings. */
        t.bigInteger('balance_minor').notNullable().defaultTo(0);
        t.string('merchant_id', 64).nullable().unique();
        t.index(['owner_user_id']);
      });
      await knex.schema.createTable('journal_entries', (t) => {
        t.string('id', 64).primary();
        t.string('kind', 16).notNullable();
        t.string('description', 300).notNullable();
        t.string('posted_at', 24).notNullable();
      });
      await knex.schema.createTable('postings', (t) => {
        t.increments('id').primary();
        t.string('entry_id', 64).notNullable().references('journal_entries.id');
        t.string('account_id', 64).notNullable().references('ledger_accounts.id');
        /** Signed minor units: positive into the account, negative out of it. */
        t.bigInteger('amount_minor').notNullable();
        t.string('currency', 3).notNullable();
        t.string('posted_at', 24).notNullable();
        t.string('merchant_id', 64).nullable();
        t.string('counterparty_user_id', 64).nullable();
        t.index(['account_id', 'posted_at', 'id']);
        t.index(['entry_id']);
      });
      await appendOnly(knex, 'journal_entries');
      await appendOnly(knex, 'postings');
    },
  },
];
