/**
 * A subgraph's database, ready to serve: opened (SQLite under the data dir, or PostgreSQL),
 * migrated, and seeded with the demo fixture when new.
 */
import path from 'node:path';
import type { Knex } from 'knex';
import type { SubgraphName } from '../lib/config.js';
import { migrate, openDb, withMigrationLock } from '../lib/db.js';
import { buildFixture } from '../seeds/fixture.js';
import { SEEDS } from '../seeds/load.js';
import { SUBGRAPHS } from '../subgraphs/index.js';

/**
 * Opens, migrates and (when new) seeds a subgraph's database: SQLite under dataDir, or PostgreSQL.
 * On PostgreSQL, migrate + seed run under an advisory lock (lib/db.ts withMigrationLock), so
 * several processes of one subgraph starting together on an empty database (`npm run
 * start:cluster`, scripts/serve.ts) migrate and seed it exactly once.
 */
export async function prepareDb(
  name: SubgraphName,
  dataDir: string,
  databaseUrl?: string,
  opts: { poolMax?: number } = {},
): Promise<{ db: Knex; seeded: boolean }> {
  const db = databaseUrl
    ? openDb({ postgresUrl: databaseUrl, schema: name, poolMax: opts.poolMax })
    : openDb({ sqliteFile: dataDir === ':memory:' ? ':memory:' : path.join(dataDir, `${name}.sqlite`) });
  try {
    const def = SUBGRAPHS[name];
    const seeded = await withMigrationLock(db, `paygraph:migrate:${name}`, async () => {
      await migrate(db, def.migrations);
      return seedOnce(db, SEEDS[name].table, (trx) => SEEDS[name].load(trx, buildFixture()));
    });
    return { db, seeded };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/** The table whose one row says "this database was seeded". */
export const SEED_MARKER_TABLE = 'paygraph_seed';

/**
 * Seeds a database at most once: the seed and its marker row commit in one transaction, so a
 * process that dies while seeding leaves an unseeded database that the next start seeds, never a
 * half-seeded one. A database from before the marker existed counts as seeded when its
 * `seededTable` has rows.
 */
export async function seedOnce(db: Knex, seededTable: string | null, seed: (trx: Knex.Transaction) => Promise<void>): Promise<boolean> {
  if (!(await db.schema.hasTable(SEED_MARKER_TABLE))) {
    const legacy = seededTable !== null && (await db(seededTable).first()) !== undefined;
    await db.transaction(async (trx) => {
      await trx.schema.createTable(SEED_MARKER_TABLE, (t) => t.string('seeded_at', 40).notNullable());
      if (legacy) await trx(SEED_MARKER_TABLE).insert({ seeded_at: 'before the seed marker' });
    });
  }
  if (await db(SEED_MARKER_TABLE).first()) return false;
  await db.transaction(async (trx) => {
    await seed(trx);
    await trx(SEED_MARKER_TABLE).insert({ seeded_at: new Date().toISOString() });
  });
  return true;
}
