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
];
