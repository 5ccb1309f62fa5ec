/**
 * A subgraph's database, ready to serve: opened (SQLite under the data dir, or PostgreSQL),
 * migrated, and seeded with the demo fixture when new.
 *
 * On PostgreSQL every subgraph has two roles (lib/db-roles.ts, docs/database-roles.md): migrations
 * and the seed run as the schema's owner, the service connects as a role that may only use its own
 * schema's tables. Where their URLs come from:
 * - PAYGRAPH_<NAME>_DATABASE_URL (service) and PAYGRAPH_<NAME>_MIGRATE_DATABASE_URL (owner), when given;
 * - otherwise the roles `<prefix>_<name>` and `<prefix>_<name>_owner` on DATABASE_URL's database
 *   (prefix: PAYGRAPH_DATABASE_ROLE_PREFIX, default the database's name), with passwords from
 *   `<data dir>/database-roles.json`; an admin URL (PAYGRAPH_DATABASE_ADMIN_URL, or in
 *   development DATABASE_URL itself) creates those roles and their passwords when migrating.
 */
import path from 'node:path';
import type { Knex } from 'knex';
import { SUBGRAPH_NAMES, type Config, type SubgraphName } from '../lib/config.js';
import {
  defaultRolePrefix,
  databaseNameOf,
  grantServiceRole,
  loginOf,
  provisionSchemaRoles,
  redactUrl,
  rolePasswords,
  sameDatabase,
  schemaRoles,
  serviceRoleProblems,
  withLogin,
  type RoleLogin,
} from '../lib/db-roles.js';
import { migrate, openDb, withMigrationLock, type Migration, type SqliteDriver } from '../lib/db.js';
import { buildFixture } from '../seeds/fixture.js';
import { SEEDS } from '../seeds/load.js';
import { SUBGRAPHS } from '../subgraphs/index.js';

/** How one subgraph reaches PostgreSQL (see the top of this file). */
export interface PgDatabase {
  /** DATABASE_URL: the database of the roles paygraph names itself (their URLs are this one's with their login). */
  url?: string;
  /** Creates the roles before migrating (PAYGRAPH_DATABASE_ADMIN_URL, or DATABASE_URL in development). */
  adminUrl?: string;
  /** The service role's URL (PAYGRAPH_<NAME>_DATABASE_URL). */
  serviceUrl?: string;
  /** The schema owner's URL (PAYGRAPH_<NAME>_MIGRATE_DATABASE_URL). */
  migrateUrl?: string;
  /** PAYGRAPH_DATABASE_ROLE_PREFIX; default: the database's name. */
  rolePrefix?: string;
}

/** One subgraph's PostgreSQL settings from the configuration; undefined: it stays on SQLite. */
export function pgDatabaseOf(config: Config, name: SubgraphName): PgDatabase | undefined {
  const pg: PgDatabase = {
    url: config.databaseUrl,
    adminUrl: config.databaseAdminUrl,
    serviceUrl: config.subgraphDatabaseUrls[name],
    migrateUrl: config.subgraphMigrateDatabaseUrls[name],
    rolePrefix: config.databaseRolePrefix,
  };
  return pg.url || pg.adminUrl || pg.serviceUrl || pg.migrateUrl ? pg : undefined;
}

/** A development shorthand: one URL that is both the database and its admin (what the tests and DATABASE_URL alone mean). */
function pgOf(pg: string | PgDatabase): PgDatabase {
  return typeof pg === 'string' ? { url: pg, adminUrl: pg } : pg;
}

/** The URLs one subgraph uses on PostgreSQL, worked out from its PgDatabase. */
export interface PgPlan {
  /** What the service connects as. */
  serviceUrl: string;
  serviceRole: string;
  /** What migrations run as (the schema owner); undefined: this process cannot migrate. */
  migrateUrl?: string;
  /** Creates the roles first. */
  admin?: { url: string; owner: RoleLogin; service: RoleLogin };
}

/**
 * Works out one subgraph's URLs. `migrating`: this process would migrate (it then creates the
 * development passwords when it has an admin); otherwise it only reads them.
 */
export function planPg(name: SubgraphName, dataDir: string, given: string | PgDatabase, opts: { migrating: boolean }): PgPlan {
  const pg = pgOf(given);
  const N = name.toUpperCase();
  if (pg.serviceUrl) {
    const service = loginOf(pg.serviceUrl);
    const migrateUrl = pg.migrateUrl;
    // Roles named in the URLs: the admin creates them when they are on its database.
    const admin =
      opts.migrating && pg.adminUrl && migrateUrl && sameDatabase(pg.adminUrl, pg.serviceUrl) && sameDatabase(pg.adminUrl, migrateUrl)
        ? { url: pg.adminUrl, owner: loginOf(migrateUrl), service }
        : undefined;
    return { serviceUrl: pg.serviceUrl, serviceRole: service.name, migrateUrl, admin };
  }
  const base = pg.url ?? pg.adminUrl;
  if (!base) throw new Error(`${name}: PAYGRAPH_${N}_MIGRATE_DATABASE_URL needs PAYGRAPH_${N}_DATABASE_URL (its service role) or DATABASE_URL`);
  if (pg.adminUrl && databaseNameOf(pg.adminUrl) !== databaseNameOf(base))
    throw new Error(`PAYGRAPH_DATABASE_ADMIN_URL (${redactUrl(pg.adminUrl)}) and DATABASE_URL (${redactUrl(base)}) name different databases`);
  const roles = schemaRoles(pg.rolePrefix ?? defaultRolePrefix(base), name);
  const provision = opts.migrating && pg.adminUrl !== undefined;
  const passwords = rolePasswords(dataDir, provision ? [roles.owner, roles.service] : [roles.service], { create: provision });
  const service = { name: roles.service, password: passwords[roles.service] };
  if (provision) {
    const owner = { name: roles.owner, password: passwords[roles.owner] };
    // Migrations connect where the admin does (directly, not through a pooler DATABASE_URL may name).
    return {
      serviceUrl: withLogin(base, service),
      serviceRole: service.name,
      migrateUrl: pg.migrateUrl ?? withLogin(pg.adminUrl!, owner),
      admin: { url: pg.adminUrl!, owner: pg.migrateUrl ? loginOf(pg.migrateUrl) : owner, service },
    };
  }
  return { serviceUrl: withLogin(base, service), serviceRole: service.name, migrateUrl: pg.migrateUrl };
}

/** The URL a subgraph's service connects with (for a supervisor handing each process its own: runtime/cluster.ts); undefined: SQLite. */
export function serviceDatabaseUrl(name: SubgraphName, config: Config): string | undefined {
  const pg = pgDatabaseOf(config, name);
  return pg && planPg(name, config.dataDir, pg, { migrating: false }).serviceUrl;
}

export interface PrepareOptions {
  /** knex pool size of the service connection (default 10). */
  poolMax?: number;
  /** Production: a service role that is not least-privilege (serviceRoleProblems), or a schema not migrated, stops the start. */
  production?: boolean;
  /** Warnings for the person starting it (development). */
  log?: (message: string) => void;
  /** SQLite only: the driver (default: PAYGRAPH_SQLITE_DRIVER, lib/db.ts sqliteDriver); the bench measures each. */
  sqliteDriver?: SqliteDriver;
}

/**
 * Opens, migrates and (when new) seeds a subgraph's database: SQLite under dataDir, or PostgreSQL
 * (`pg`: the subgraph's settings, or one URL that is both the database and its admin, as in
 * development). On PostgreSQL it migrates and seeds as the schema owner when this process has the
 * owner's URL (creating the roles first when it has an admin URL), under an advisory lock
 * (lib/db.ts withMigrationLock), so several processes of one subgraph starting together on an
 * empty database (`npm run start:cluster`, scripts/serve.ts) migrate and seed it exactly once;
 * then it opens the service role's connection, checks that the schema is migrated and that the
 * role may do no more than it needs, and returns that connection. `url`: its URL (PostgreSQL).
 */
export async function prepareDb(
  name: SubgraphName,
  dataDir: string,
  pg?: string | PgDatabase,
  opts: PrepareOptions = {},
): Promise<{ db: Knex; seeded: boolean; url?: string }> {
  const def = SUBGRAPHS[name];
  if (!pg) {
    const db = openDb({ sqliteFile: dataDir === ':memory:' ? ':memory:' : path.join(dataDir, `${name}.sqlite`), driver: opts.sqliteDriver });
    try {
      return { db, seeded: await migrateAndSeed(db, name, def.migrations) };
    } catch (err) {
      await db.destroy();
      throw err;
    }
  }
  const plan = planPg(name, dataDir, pg, { migrating: true });
  let seeded = plan.migrateUrl ? await migrateAsOwner(name, plan, plan.migrateUrl) : false;
  const db = openDb({ postgresUrl: plan.serviceUrl, schema: name, poolMax: opts.poolMax, createSchema: false });
  try {
    const pending = await pendingMigrations(db, def.migrations);
    if (pending.length > 0) {
      const N = name.toUpperCase();
      const how = `run \`node --import tsx scripts/serve.ts migrate\` with PAYGRAPH_${N}_MIGRATE_DATABASE_URL or PAYGRAPH_DATABASE_ADMIN_URL (docs/database-roles.md)`;
      if (plan.migrateUrl || opts.production) throw new Error(`${name}: schema ${name} is not migrated (pending: ${pending.join(', ')}): ${how}`);
      // Development, one URL that is not paygraph's own role (as before roles existed): it
      // migrates as that role, which must then own the schema (the check below says so).
      try {
        seeded = await migrateAsOwner(name, plan, plan.serviceUrl);
      } catch (err) {
        throw new Error(`${name}: schema ${name} is not migrated and ${plan.serviceRole} may not migrate it (${(err as Error).message}): ${how}`, {
          cause: err,
        });
      }
    }
    const problems = await serviceRoleProblems(
      db,
      name,
      SUBGRAPH_NAMES.filter((n) => n !== name),
    );
    if (problems.length > 0) {
      const message = `${name}: the service's database role is not least-privilege: ${problems.join('; ')} (docs/database-roles.md)`;
      if (opts.production) throw new Error(message);
      opts.log?.(`warning: ${message}`);
    }
    return { db, seeded, url: plan.serviceUrl };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/** Migrations of `migrations` not yet applied in `db`'s schema (all of them when it has none, or the role cannot read them). */
export async function pendingMigrations(db: Knex, migrations: readonly Migration[]): Promise<string[]> {
  let done: Set<string>;
  try {
    done = new Set(((await db('knex_migrations').select('name')) as { name: string }[]).map((r) => r.name));
  } catch (err) {
    // 42P01: no such table (nothing migrated yet); 42501: no right to read it.
    if (['42P01', '42501'].includes((err as { code?: string }).code ?? '')) done = new Set();
    else throw err;
  }
  return migrations.map((m) => m.name).filter((n) => !done.has(n));
}

/**
 * Migrates and seeds one subgraph's schema as its owner (`ownerUrl`), under the subgraph's advisory
 * lock: creating the roles first with the plan's admin (under a database-wide lock of its own), and
 * granting the service role its rights after (lib/db-roles.ts grantServiceRole). Returns whether it seeded.
 */
async function migrateAsOwner(name: SubgraphName, plan: PgPlan, ownerUrl: string): Promise<boolean> {
  const admin = plan.admin ? openDb({ postgresUrl: plan.admin.url, schema: name, poolMax: 3, createSchema: false }) : null;
  const owner = openDb({ postgresUrl: ownerUrl, schema: name, poolMax: 3, createSchema: false });
  try {
    return await withMigrationLock(admin ?? owner, `paygraph:migrate:${name}`, async () => {
      if (admin) await withMigrationLock(admin, 'paygraph:roles', () => provisionSchemaRoles(admin, name, plan.admin!));
      else await ensureSchema(owner, name);
      const seeded = await migrateAndSeed(owner, name, SUBGRAPHS[name].migrations);
      if (loginOf(ownerUrl).name !== plan.serviceRole) await grantServiceRole(owner, name, plan.serviceRole);
      return seeded;
    });
  } finally {
    await owner.destroy();
    await admin?.destroy();
  }
}

/** Creates `schema` when missing (a role given CREATE on the database; the admin path creates it for the owner). */
async function ensureSchema(db: Knex, schema: string): Promise<void> {
  if ((await db.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [schema])).rows.length > 0) return;
  await db.raw(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
}

/** Runs the subgraph's migrations, then seeds it when new (SQLite: one process owns the file; PostgreSQL: under the caller's lock). */
async function migrateAndSeed(db: Knex, name: SubgraphName, migrations: readonly Migration[]): Promise<boolean> {
  await migrate(db, migrations);
  return seedOnce(db, SEEDS[name].table, (trx) => SEEDS[name].load(trx, buildFixture()));
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
