import type { Migration } from '../../lib/db.js';

export const migrations: readonly Migration[] = [
  {
    name: '001_alerts',
    async up(knex) {
      await knex.schema.createTable('charge_alerts', (t) => {
        t.string('id', 64).primary();
        t.string('user_id', 64).notNullable();
        t.string('account_id', 64).notNullable();
        t.string('purchase_id', 64).notNullable();
        t.string('status', 24).notNullable();
        t.integer('risk_score').notNullable();
        t.string('reasons', 500).notNullable();
        t.string('created_at', 24).notNullable();
        t.index(['user_id', 'created_at']);
      });
    },
  },
  {
    name: '002_alert_consumer',
    async up(knex) {
      // Where the consumer of the payments event feed stands (one row per feed).
      await knex.schema.createTable('consumer_positions', (t) => {
        t.string('feed', 64).primary();
        t.bigInteger('position').notNullable();
        t.string('updated_at', 24).notNullable();
      });
      // The per-account spending history the rules need, learned from PURCHASE_POSTED events.
      // The primary key on event_id makes processing idempotent by event id.
      await knex.schema.createTable('purchase_history', (t) => {
        t.bigInteger('event_id').primary();
        t.string('purchase_id', 64).notNullable().unique();
        t.string('account_id', 64).notNullable();
        t.string('user_id', 64).notNullable();
        t.bigInteger('amount_minor').notNullable();
        t.string('currency', 3).notNullable();
        t.string('merchant_id', 64).notNullable();
        t.string('merchant_category', 32).notNullable();
        t.string('merchant_country', 2).notNullable();
        t.string('posted_at', 24).notNullable();
        t.boolean('card_present').notNullable();
        t.index(['account_id', 'event_id']);
      });
      await knex.schema.alterTable('charge_alerts', (t) => {
        // The event that raised the alert: a monotonic cursor for subscription resume.
        t.bigInteger('event_id');
        t.string('resolved_at', 24);
        t.unique(['purchase_id']);
        t.index(['user_id', 'event_id']);
      });
      // Outbox of freeze commands for the payments service, written in the same transaction as
      // the CONFIRMED_FRAUD resolution and delivered at least once by the freeze dispatcher.
      await knex.schema.createTable('freeze_commands', (t) => {
        t.string('id', 64).primary();
        t.string('alert_id', 64).notNullable().unique();
        t.string('account_id', 64).notNullable();
        t.string('status', 16).notNullable(); // PENDING | DELIVERED | FAILED
        t.integer('attempts').notNullable().defaultTo(0);
        t.string('next_attempt_at', 24).notNullable();
        t.string('last_error', 500);
        t.string('created_at', 24).notNullable();
        t.string('delivered_at', 24);
        t.index(['status', 'next_attempt_at']);
      });
    },
  },
  {
    name: '003_consumer_lease',
    async up(knex) {
      // Who may consume a feed right now (subgraphs/alerts/lease.ts): one row per feed, taken by
      // the worker that finds it expired, renewed while it works, released on stop.
      await knex.schema.createTable('consumer_leases', (t) => {
        t.string('feed', 64).primary();
        t.string('holder', 200).notNullable();
        // Milliseconds since the epoch (holder's clock); 0: free.
        t.bigInteger('expires_at').notNullable();
        t.string('acquired_at', 24);
      });
      await knex('consumer_leases').insert({ feed: 'payments', holder: '', expires_at: 0, acquired_at: null });
    },
  },
  {
    /** Traces (docs/operations.md#tracing): the traceparent of the consumer span that raised an alert, for the subscription bridge. */
    name: '004_alert_trace_context',
    async up(knex) {
      await knex.schema.alterTable('charge_alerts', (t) => {
        t.string('trace_parent', 55).nullable();
      });
    },
  },
];
