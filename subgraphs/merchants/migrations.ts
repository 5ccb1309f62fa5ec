import type { Migration } from '../../lib/db.js';

export const migrations: readonly Migration[] = [
  {
    name: '001_merchants',
    async up(knex) {
      await knex.schema.createTable('merchants', (t) => {
        t.string('id', 64).primary();
        t.string('name', 200).notNullable();
        t.string('category', 32).notNullable();
        t.string('mcc', 4).notNullable();
        t.string('country', 2).notNullable();
        t.string('city', 100).notNullable();
        t.index(['name']);
      });
    },
  },
];
