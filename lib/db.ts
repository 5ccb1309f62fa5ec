/**
 * knex factory. SQLite (one file per subgraph, or :memory:) is the embedded default, on either
 * driver (sqliteDriver); the same code runs on PostgreSQL when a connection URL is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { failSpan, inTrace, SpanKind, tracer, type Span } from './tracing.js';
import { BetterSqliteClient, BUSY_TIMEOUT_MS } from './better-sqlite-client.js';

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
  | {
      sqliteFile: string;
      /** default: PAYGRAPH_SQLITE_DRIVER, else DEFAULT_SQLITE_DRIVER */
      driver?: SqliteDriver;
    }
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
  const driver = target.driver ?? sqliteDriver();
  return knexFactory({
    client: driver === 'better-sqlite3' ? (BetterSqliteClient as unknown as typeof Knex.Client) : 'sqlite3',
    connection: { filename: target.sqliteFile },
    useNullAsDefault: true,
    // One connection: SQLite has one writer anyway, and :memory: databases live per connection.
    pool: { min: 1, max: 1, afterCreate: driver === 'better-sqlite3' ? betterSqlitePragmas : sqlite3Pragmas },
  });
}

/**
 * The two SQLite drivers knex supports here (docs/performance.md, "Driver choice"): `better-sqlite3`
 * (the default: synchronous calls in the JavaScript thread, no thread-pool round trip per statement,
 * several times the ledger's throughput) and `sqlite3` (node-sqlite3: every statement queued to
 * libuv's thread pool). Both pass the whole money suite; `PAYGRAPH_SQLITE_DRIVER` picks one.
 */
export type SqliteDriver = 'better-sqlite3' | 'sqlite3';
export const SQLITE_DRIVERS: readonly SqliteDriver[] = ['better-sqlite3', 'sqlite3'];
export const DEFAULT_SQLITE_DRIVER: SqliteDriver = 'better-sqlite3';

/** The driver named by PAYGRAPH_SQLITE_DRIVER (unset or empty: the default); any other value is refused. */
export function sqliteDriver(env: NodeJS.ProcessEnv = process.env): SqliteDriver {
  const name = env.PAYGRAPH_SQLITE_DRIVER;
  if (name === undefined || name === '') return DEFAULT_SQLITE_DRIVER;
  if ((SQLITE_DRIVERS as readonly string[]).includes(name)) return name as SqliteDriver;
  throw new Error(`PAYGRAPH_SQLITE_DRIVER must be one of ${SQLITE_DRIVERS.join(', ')} (got ${JSON.stringify(name)})`);
}

/**
 * The same pragmas on both drivers: foreign keys, WAL (file databases), and a wait for another
 * connection's writer: SQLite's busy_timeout on node-sqlite3 (it waits in the thread pool), the
 * client's own asynchronous retry on better-sqlite3 (lib/better-sqlite-client.ts), whose
 * busy_timeout is 0 so that a wait never blocks the JavaScript thread.
 */
const PRAGMAS = ['foreign_keys = ON', 'journal_mode = WAL', `busy_timeout = ${BUSY_TIMEOUT_MS}`] as const;
const BETTER_SQLITE_PRAGMAS = ['foreign_keys = ON', 'journal_mode = WAL', 'busy_timeout = 0'] as const;

function sqlite3Pragmas(conn: { run(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void): void {
  conn.run(`PRAGMA ${PRAGMAS[0]}`, (e1) => {
    if (e1) return done(e1, conn);
    conn.run(`PRAGMA ${PRAGMAS[1]}`, () => conn.run(`PRAGMA ${PRAGMAS[2]}`, (e3) => done(e3, conn)));
  });
}

function betterSqlitePragmas(conn: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void): void {
  try {
    for (const p of BETTER_SQLITE_PRAGMAS) conn.pragma(p);
    done(null, conn);
  } catch (err) {
    done(err as Error, conn);
  }
}

/** Either SQLite driver (both are knex's `sqlite3` dialect). */
export function isSqlite(db: Knex): boolean {
  return (db.client as { dialect?: string }).dialect === 'sqlite3';
}

/** Which SQLite driver a handle runs on, or null for PostgreSQL. */
export function sqliteDriverOf(db: Knex): SqliteDriver | null {
  if (!isSqlite(db)) return null;
  return (db.client as { driverName?: string }).driverName === 'better-sqlite3' ? 'better-sqlite3' : 'sqlite3';
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

/**
 * A multi-row INSERT of `rows` (all with the same columns) into `table`. On SQLite it is sent as
 * one `INSERT ... VALUES (...), (...)` statement: knex's SQLite dialect builds multi-row inserts as
 * `SELECT ... UNION ALL SELECT ...`, quoting every column of every row, which cost the ledger's hot
 * path about a fifth of its CPU and gives SQLite a compound select to compile
 * (docs/performance.md, "Ledger"). PostgreSQL keeps knex's own insert (already VALUES lists).
 * Missing values are NULL, as `useNullAsDefault` makes them.
 */
export async function insertRows(
  q: Knex | Knex.Transaction,
  table: string,
  rows: readonly Record<string, unknown>[],
  /** An upsert: on a conflict on `columns`, these columns take the new row's values. */
  upsert?: { columns: readonly string[]; update: readonly string[] },
): Promise<void> {
  if (rows.length === 0) return;
  if (!isSqlite(q as Knex)) {
    const insert = q(table).insert(rows as Record<string, unknown>[]);
    await (upsert ? insert.onConflict([...upsert.columns]).merge([...upsert.update]) : insert);
    return;
  }
  const columns = Object.keys(rows[0]!);
  const one = `(${columns.map(() => '?').join(', ')})`;
  const bindings: unknown[] = [];
  for (const r of rows) for (const c of columns) bindings.push(r[c] ?? null);
  const onConflict = upsert
    ? ` ON CONFLICT (${upsert.columns.map((c) => `"${c}"`).join(', ')}) DO UPDATE SET ${upsert.update.map((c) => `"${c}" = excluded."${c}"`).join(', ')}`
    : '';
  await q.raw(
    `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${rows.map(() => one).join(', ')}${onConflict}`,
    bindings as Knex.RawBinding[],
  );
}
