/**
 * knex factory. SQLite (one file per subgraph, or :memory:) is the embedded default; the same
 * code runs on PostgreSQL when a connection URL is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { failSpan, inTrace, SpanKind, tracer, type Span } from './tracing.js';

export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down?(knex: Knex): Promise<void>;
}

/**
 * Where a subgraph's data lives: a SQLite file (or ':memory:'), or a PostgreSQL database, where
 * each subgraph keeps its tables in its own schema (`schema`), so subgraphs stay isolated even
 * when they share one server.
 */
export type DbTarget =
  | { sqliteFile: string }
  | {
      postgresUrl: string;
      schema: string;
      /** pool size (default 10) */
      poolMax?: number;
      /** `CREATE SCHEMA IF NOT EXISTS` on every new connection (default true); false for a role that may not create schemas (lib/db-roles.ts). */
      createSchema?: boolean;
    };

/** PostgreSQL errors a concurrent `CREATE SCHEMA IF NOT EXISTS` may raise when another process created it first. */
const SCHEMA_RACE_CODES = new Set(['42P06', '23505']);

/** The files SQLite keeps beside a database file. */
const SQLITE_SIDECARS = ['-wal', '-shm', '-journal'] as const;

/**
 * Data files are private to the service's user: the data directory is created 0700 and every
 * SQLite file 0600. SQLite would create the database file itself with 0644 (less the umask), so
 * it is created here first, empty and 0600 (an empty file is a valid new database to SQLite):
 * there is no moment when it exists with a wider mode, as there would be with a chmod after
 * SQLite created it. (Setting the process umask instead would leave no window either, but it is
 * process-wide, changing every other file the process writes, and refused in worker threads.)
 * The sidecars need nothing: SQLite creates -wal, -shm and -journal with the mode of their
 * database file. Files that already exist with a wider mode (an install from before this rule, a
 * restored backup) are narrowed to 0600; an existing directory is left as it is.
 */
function createPrivately(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT, 0o600));
  for (const f of [file, ...SQLITE_SIDECARS.map((s) => `${file}${s}`)]) {
    let mode: number;
    try {
      mode = fs.statSync(f).mode;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') continue;
      throw err;
    }
    if ((mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
  }
}

export function openDb(target: DbTarget): Knex {
  if ('postgresUrl' in target) {
    if (!/^[a-z_][a-z0-9_]*$/.test(target.schema)) throw new Error(`bad schema name ${target.schema}`);
    return knexFactory({
      client: 'pg',
      connection: target.postgresUrl,
      searchPath: [target.schema],
      pool: {
        min: 0,
        max: target.poolMax ?? 10,
        afterCreate(
          conn: { query(sql: string, cb: (err: (Error & { code?: string }) | null) => void): void },
          done: (err: Error | null, conn: unknown) => void,
        ) {
          if (target.createSchema === false) return done(null, conn);
          // Two processes of one subgraph starting together on an empty database both get here:
          // the loser of that race sees a duplicate error, and the schema exists either way.
          conn.query(`CREATE SCHEMA IF NOT EXISTS ${target.schema}`, (err) => done(err && !SCHEMA_RACE_CODES.has(err.code ?? '') ? err : null, conn));
        },
      },
    });
  }
  if (target.sqliteFile !== ':memory:') createPrivately(target.sqliteFile);
  return knexFactory({
    client: 'sqlite3',
    connection: { filename: target.sqliteFile },
    useNullAsDefault: true,
    // One connection: SQLite has one writer anyway, and :memory: databases live per connection.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
        conn.run('PRAGMA foreign_keys = ON', (e1) => {
          if (e1) return done(e1, conn);
          conn.run('PRAGMA journal_mode = WAL', () => conn.run('PRAGMA busy_timeout = 5000', (e3) => done(e3, conn)));
        });
      },
    },
  });
}

export function isSqlite(db: Knex): boolean {
  return db.client.config.client === 'sqlite3';
}

/** Run a subgraph's own migrations (kept in code, in order). */
export async function migrate(db: Knex, migrations: readonly Migration[]): Promise<void> {
  await db.migrate.latest({
    migrationSource: {
      getMigrations: async () => [...migrations],
      getMigrationName: (m: Migration) => m.name,
      getMigration: async (m: Migration) => ({ up: m.up, down: m.down ?? (async () => undefined) }),
    },
  });
}

interface PgConnection {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * Runs `fn` (typically migrate + seed) while holding a PostgreSQL advisory lock named `name`, so
 * that several processes starting together on one empty database do it one after the other: the
 * first migrates and seeds, the others then find the work done. The lock is held on a connection
 * of its own, released when `fn` settles (or when that connection dies). On SQLite, one process
 * owns the file: `fn` just runs.
 */
export async function withMigrationLock<T>(db: Knex, name: string, fn: () => Promise<T>): Promise<T> {
  if (isSqlite(db)) return fn();
  const conn = (await db.client.acquireConnection()) as PgConnection;
  try {
    await conn.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    try {
      return await fn();
    } finally {
      await conn.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/**
 * Makes a table append-only in the database itself: UPDATE and DELETE abort (SQLite and
 * PostgreSQL), and so does TRUNCATE (PostgreSQL; SQLite has none). Idempotent on PostgreSQL
 * (`CREATE OR REPLACE TRIGGER`, PostgreSQL 14+), so a later migration can re-apply it to add what
 * an older version lacked.
 */
export async function appendOnly(knex: Knex, table: string): Promise<void> {
  if (isSqlite(knex)) {
    for (const op of ['UPDATE', 'DELETE']) {
      await knex.raw(
        `CREATE TRIGGER IF NOT EXISTS ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
      );
    }
    return;
  }
  await knex.raw(
    `CREATE OR REPLACE FUNCTION paygraph_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql`,
  );
  await knex.raw(`CREATE OR REPLACE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION paygraph_append_only()`);
  await knex.raw(`CREATE OR REPLACE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION paygraph_append_only()`);
}

/** The longest SQL text a span records (a multi-row statement can be long); the rest is cut. */
export const TRACED_SQL_MAX = 1_000;

const tracedDbs = new WeakSet<Knex>();

interface KnexQueryEvent {
  __knexQueryUid?: string;
  sql?: string;
  method?: string;
}

/**
 * One client span per SQL statement run inside a trace (lib/tracing.ts), from knex's own `query`,
 * `query-response` and `query-error` events, as a child of whatever span issued it, in the tracer
 * of `service` (the subgraph the database belongs to). A span records the database system, the
 * statement's text (placeholders, never the bound values: amounts, ids and masks stay out of
 * traces) and its operation. Statements outside any trace (background loops, migrations) open
 * none. Idempotent per handle: a subgraph restarted on the same handle does not count twice.
 */
export function traceQueries(db: Knex, service: string): void {
  if (tracedDbs.has(db)) return;
  tracedDbs.add(db);
  const system = isSqlite(db) ? 'sqlite' : 'postgresql';
  const open = new Map<string, Span>();
  db.on('query', (q: KnexQueryEvent) => {
    if (!q.__knexQueryUid || !inTrace()) return;
    const sql = q.sql ?? '';
    const operation = (/^\s*([a-z]+)/i.exec(sql)?.[1] ?? q.method ?? 'query').toUpperCase();
    const span = tracer(service).startSpan(`${operation} ${service}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': system,
        'db.namespace': service,
        'db.operation.name': operation,
        'db.query.text': sql.length > TRACED_SQL_MAX ? `${sql.slice(0, TRACED_SQL_MAX)}...` : sql,
      },
    });
    open.set(q.__knexQueryUid, span);
  });
  const end = (q: KnexQueryEvent | undefined, err?: unknown) => {
    const span = q?.__knexQueryUid ? open.get(q.__knexQueryUid) : undefined;
    if (!span) return;
    open.delete(q!.__knexQueryUid!);
    if (err !== undefined) failSpan(span, err);
    span.end();
  };
  db.on('query-response', (_response: unknown, q: KnexQueryEvent) => end(q));
  db.on('query-error', (err: unknown, q: KnexQueryEvent) => end(q, err));
}
