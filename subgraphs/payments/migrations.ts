import { appendOnly, type Migration } from '../../lib/db.js';

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
  {
    /**
     * Money movement: transfers and purchases (business records of posted journal entries),
     * idempotency keys, the event outbox, merchant metadata on settlement accounts, and the
     * SQLite write-lock row every ledger transaction updates first (see ledger/store.ts).
     */
    name: '002_money_movement',
    async up(knex) {
      await knex.schema.alterTable('ledger_accounts', (t) => {
        t.string('merchant_name', 120).nullable();
        t.string('merchant_category', 32).nullable();
        t.string('merchant_country', 2).nullable();
        t.string('merchant_mcc', 4).nullable();
      });
      await knex.schema.createTable('ledger_write_lock', (t) => {
        t.integer('id').primary();
        /** Bumped by the first statement of every ledger write transaction (takes SQLite's write lock). */
        t.bigInteger('version').notNullable().defaultTo(0);
      });
      await knex('ledger_write_lock').insert({ id: 1, version: 0 });
      await knex.schema.createTable('transfers', (t) => {
        t.string('id', 64).primary();
        t.string('entry_id', 64).notNullable().unique().references('journal_entries.id');
        t.string('from_account_id', 64).notNullable().references('ledger_accounts.id');
        t.string('from_user_id', 64).notNullable();
        t.string('to_account_id', 64).notNullable().references('ledger_accounts.id');
        t.string('to_user_id', 64).notNullable();
        t.bigInteger('amount_minor').notNullable();
        t.string('currency', 3).notNullable();
        t.text('note').nullable();
        t.string('status', 16).notNullable();
        t.string('created_at', 24).notNullable();
        /** Daily-limit look-up: the sender's transfers since the start of the UTC day. */
        t.index(['from_user_id', 'currency', 'created_at']);
      });
      await knex.schema.createTable('purchases', (t) => {
        t.string('id', 64).primary();
        t.string('entry_id', 64).notNullable().unique().references('journal_entries.id');
        t.string('account_id', 64).notNullable().references('ledger_accounts.id');
        t.string('user_id', 64).notNullable();
        t.string('merchant_id', 64).notNullable();
        t.bigInteger('amount_minor').notNullable();
        t.string('currency', 3).notNullable();
        t.text('description').nullable();
        t.boolean('card_present').notNullable();
        t.string('status', 16).notNullable();
        t.string('created_at', 24).notNullable();
        t.index(['user_id']);
      });
      await knex.schema.createTable('idempotency_keys', (t) => {
        t.increments('id').primary();
        t.string('user_id', 64).notNullable();
        t.string('operation', 32).notNullable();
        t.string('idem_key', 255).notNullable();
        /** sha256 (hex) of the canonical input, without the key. */
        t.string('request_hash', 64).notNullable();
        /** JSON of the stored result, e.g. {"transferId":"trf_..."}. */
        t.text('result').notNullable();
        t.string('created_at', 24).notNullable();
        t.unique(['user_id', 'operation', 'idem_key']);
        t.index(['created_at']);
      });
      await knex.schema.createTable('outbox_events', (t) => {
        t.increments('id').primary();
        t.string('event_type', 32).notNullable();
        /** JSON text. */
        t.text('payload').notNullable();
        t.string('created_at', 24).notNullable();
      });
      await knex.schema.createTable('account_freezes', (t) => {
        t.increments('id').primary();
        t.string('account_id', 64).notNullable();
        t.string('alert_id', 64).notNullable();
        t.string('frozen_at', 24).notNullable();
        t.index(['account_id']);
      });
      await appendOnly(knex, 'transfers');
      await appendOnly(knex, 'purchases');
      await appendOnly(knex, 'outbox_events');
      await appendOnly(knex, 'account_freezes');
    },
  },
  {
    /**
     * Ledger write path (docs/money.md, "Throughput"): the daily transfer limit reads one counter
     * row per (sender, currency, UTC day), updated in the same transaction as the transfer, instead
     * of summing the day's transfers; recipients are looked up by `lower(handle)` through an index.
     * Existing transfers are counted into the new table.
     */
    name: '003_ledger_throughput',
    async up(knex) {
      await knex.schema.createTable('transfer_daily_usage', (t) => {
        t.string('user_id', 64).notNullable();
        t.string('currency', 3).notNullable();
        /** UTC calendar day, YYYY-MM-DD (the first 10 characters of the transfers' created_at). */
        t.string('day', 10).notNullable();
        /** Sum of the user's transfers in that currency that day, minor units. */
        t.bigInteger('sent_minor').notNullable().defaultTo(0);
        t.primary(['user_id', 'currency', 'day']);
      });
      await knex.raw(
        'INSERT INTO transfer_daily_usage (user_id, currency, day, sent_minor) ' +
          'SELECT from_user_id, currency, substr(created_at, 1, 10), SUM(amount_minor) FROM transfers GROUP BY from_user_id, currency, substr(created_at, 1, 10)',
      );
      await knex.raw('CREATE INDEX parties_handle_lower ON parties (lower(handle))');
    },
  },
  {
    /** PostgreSQL: posted rows refuse TRUNCATE too (databases migrated before lib/db.ts appendOnly covered it). */
    name: '004_append_only_truncate',
    async up(knex) {
      for (const table of ['journal_entries', 'postings', 'transfers', 'purchases', 'outbox_events', 'account_freezes']) await appendOnly(knex, table);
    },
  },
  {
    /**
     * Traces (docs/operations.md#tracing): the W3C traceparent of the operation that committed an
     * event, so the alerts consumer continues its trace across the feed; null when it was untraced.
     */
    name: '005_outbox_trace_context',
    async up(knex) {
      await knex.schema.alterTable('outbox_events', (t) => {
        t.string('trace_parent', 55).nullable();
      });
    },
  },
];
