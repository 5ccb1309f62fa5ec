/**
 * knex's better-sqlite3 client with two changes (docs/performance.md, "Driver choice"):
 *
 * 1. A busy database is waited for without blocking the thread. better-sqlite3 is synchronous, so
 *    SQLite's own `busy_timeout` would spin inside the JavaScript thread; when the connection
 *    holding the lock belongs to the same process (several handles on one file, as the
 *    several-processes tests do) it could never commit, and both would fail with "database is
 *    locked". Here the connection's busy_timeout is 0 and a statement that meets SQLITE_BUSY is
 *    retried after a short timer, for up to BUSY_TIMEOUT_MS in all, like busy_timeout but letting
 *    the lock holder run. Retrying a statement that got SQLITE_BUSY is what SQLite's busy handler
 *    does itself; the ledger's first statement is a write, so no read snapshot is ever stale.
 * 2. Prepared statements are kept per connection (keyed by SQL text, at most STATEMENT_CACHE):
 *    knex's client prepares every statement again on every call.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The wait for another connection's write lock, as busy_timeout was (ms). */
export const BUSY_TIMEOUT_MS = 5000;
/** Distinct SQL texts remembered per connection (the oldest is dropped past it). */
const STATEMENT_CACHE = 512;

interface Statement {
  reader: boolean;
  all(bindings: unknown[]): unknown;
  run(bindings: unknown[]): { lastInsertRowid: number | bigint; changes: number };
  safeIntegers(on: boolean): Statement;
}

interface Connection {
  prepare(sql: string): Statement;
}

interface QueryObject {
  sql: string;
  bindings?: unknown[];
  options?: unknown;
  response?: unknown;
  context?: unknown;
}

interface KnexBetterSqliteClient {
  _formatBindings(bindings: unknown[] | undefined): unknown[];
  _optSafeIntegers(options: unknown): boolean | undefined;
}

type ClientClass = new (config: unknown) => KnexBetterSqliteClient;

const Base = require('knex/lib/dialects/better-sqlite3/index.js') as ClientClass;

const statements = new WeakMap<Connection, Map<string, Statement>>();

function prepared(connection: Connection, sql: string): Statement {
  let cache = statements.get(connection);
  if (!cache) statements.set(connection, (cache = new Map()));
  let stmt = cache.get(sql);
  if (stmt) return stmt;
  stmt = connection.prepare(sql);
  if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
  cache.set(sql, stmt);
  return stmt;
}

const isBusy = (err: unknown) => {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class BetterSqliteClient extends Base {
  async _query(connection: Connection, obj: QueryObject): Promise<QueryObject> {
    if (!obj.sql) throw new Error('The query is empty');
    if (!connection) throw new Error('No connection provided');
    const statement = prepared(connection, obj.sql);
    // A cached statement keeps the mode it was last given: set it on every call.
    statement.safeIntegers(this._optSafeIntegers(obj.options) ?? false);
    const bindings = this._formatBindings(obj.bindings);
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
      try {
        if (statement.reader) {
          obj.response = statement.all(bindings);
          return obj;
        }
        const response = statement.run(bindings);
        obj.response = response;
        obj.context = { lastID: response.lastInsertRowid, changes: response.changes };
        return obj;
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err;
        await sleep(wait);
      }
    }
  }
}
