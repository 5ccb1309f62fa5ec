import type { Migration } from '../../lib/db.js';

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
];
