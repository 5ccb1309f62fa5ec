import type { Migration } from '../../lib/db.js';

export const migrations: readonly Migration[] = [
  {
    name: '001_ads',
    async up(knex) {
      await knex.schema.createTable('offers', (t) => {
        t.string('id', 64).primary();
        t.string('headline', 200).notNullable();
        t.string('merchant_id', 64).notNullable();
        t.string('topic', 32).notNullable();
        t.index(['topic']);
      });
      await knex.schema.createTable('interests', (t) => {
        t.string('user_id', 64).notNullable();
        t.string('topic', 32).notNullable();
        t.primary(['user_id', 'topic']);
      });
    },
  },
];
