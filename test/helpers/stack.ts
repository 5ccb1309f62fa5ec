/**
 * Integration-test harness: the whole stack in the test process on ephemeral ports, with
 * in-memory (or temporary-file) SQLite databases, and a GraphQL-over-HTTP client.
 */
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { signToken } from '../../lib/auth.js';
import { openDb } from '../../lib/db.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import type { Purpose } from '../../lib/auth.js';
import { generateKeyRing, type KeyRing } from '../../lib/transport/keys.js';
import { startStack, type Stack, type StackOptions } from '../../runtime/stack.js';
import { buildFixture } from '../../seeds/fixture.js';

/** A fresh random secret (256 bits, hex), labelled for error messages: tests never use secret constants. */
export function randomSecret(label = 'test-secret'): string {
  return `${label}-${randomBytes(32).toString('hex')}`;
}

/**
 * The secrets of this test process's stacks, generated when the module loads (each test file has
 * its own module graph, so its own secrets). Child processes get them through their environment.
 */
export const TEST_JWT_SECRET = randomSecret('test-jwt');
/**
 * Every service's Ed25519 private key for this test process's stacks (a fresh key ring when the
 * module loads, never constants). Tests sign as a service with it (./signing.ts).
 */
export const TEST_KEYS: KeyRing = generateKeyRing();

/** The SQL of an audit append (its transaction, the log, its tree, its lock, the institutions of a record): what read-path query counts leave out. */
export const AUDIT_LOG_SQL = /data_access_log|audit_tree|pg_advisory_xact_lock|select distinct .user_id., .institution_id. from .accounts.|^(BEGIN|COMMIT);?$/i;

export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  headers: Headers;
  /** The body as received (what leak scans read: see expectNoLeak in ./matchers.ts). */
  text: string;
}

export interface TestStack extends Stack {
  /** The key ring this stack's services were handed their keys from (TEST_KEYS unless overridden). */
  keys: KeyRing;
  /** Token for a seeded user by handle: HS256 with TEST_JWT_SECRET (what the default verifier accepts). */
  token(handle: string, purpose?: Purpose): Promise<string>;
  /** POST a GraphQL operation to the gateway. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string | null,
    headers?: Record<string, string>,
  ): Promise<GqlResponse<T>>;
  /**
   * A connection to a subgraph's schema that may change it (DDL, e.g. a trigger simulating an
   * outage): on PostgreSQL the test server's admin role (`stack.dbs` are the services' own roles,
   * which may not), on SQLite the subgraph's database itself. Closed when the stack stops.
   */
  adminDb(name: SubgraphName): Knex;
  /** Count SQL statements across every subgraph database (or `only` some) while `fn` runs, optionally only those `include` accepts. */
  countQueries(fn: () => Promise<unknown>, only?: SubgraphName[], include?: (sql: string) => boolean): Promise<number>;
}

export function userId(handle: string): string {
  const u = buildFixture().users.find((x) => x.handle === handle);
  if (!u) throw new Error(`no seeded user ${handle}`);
  return u.id;
}

/** POSTs a GraphQL request; `body` is sent as JSON, or as it is when a string (a body that was signed). */
export async function postGraphQL<T>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: { data?: T | null; errors?: GqlResponse['errors'] } = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 300)}`);
  }
  return { status: res.status, data: json.data, errors: json.errors, headers: res.headers, text };
}

/**
 * With PAYGRAPH_TEST_DATABASE_URL set (`npm run test:scale`), every test stack gets a fresh
 * PostgreSQL database on that server, dropped when the stack stops (with the roles the stack
 * created for it: their prefix is the database's name); otherwise in-memory SQLite.
 * With PAYGRAPH_TEST_REDIS_URL set (`npm run test:scale` sets it from REDIS_URL), every test stack
 * uses that Redis for cross-process fan-out (StackOptions.redisUrl), each subgraph as its own ACL
 * user when PAYGRAPH_TEST_<NAME>_REDIS_URL is set (.ci/run makes them: StackOptions.redisUrls).
 */
export async function freshPostgresDatabase(adminUrl: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `paygraph_test_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      // The subgraphs' roles (named after the database: runtime/database.ts) belong to the server:
      // with their database gone they own nothing, and go too.
      const roles = (await admin.raw('SELECT rolname FROM pg_roles WHERE starts_with(rolname, ?)', [`${name}_`])).rows as { rolname: string }[];
      for (const r of roles) await admin.raw(`DROP ROLE IF EXISTS "${r.rolname}"`);
      await admin.destroy();
    },
  };
}

export async function startTestStack(overrides: Partial<StackOptions> = {}): Promise<TestStack> {
  const adminUrl = process.env.PAYGRAPH_TEST_DATABASE_URL;
  const pg = adminUrl && !overrides.databaseUrl && !overrides.dataDir ? await freshPostgresDatabase(adminUrl) : null;
  const redisUrl = process.env.PAYGRAPH_TEST_REDIS_URL || undefined;
  // Each subgraph's own Redis ACL user when CI made them (.ci/run: PAYGRAPH_TEST_<NAME>_REDIS_URL), as in production.
  const redisUrls = Object.fromEntries(
    SUBGRAPH_NAMES.map((n) => [n, process.env[`PAYGRAPH_TEST_${n.toUpperCase()}_REDIS_URL`] || undefined]).filter(([, u]) => u),
  ) as Partial<Record<SubgraphName, string>>;
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir: ':memory:',
      port: 0,
      // HS256 with TEST_JWT_SECRET unless the test configures a verifier of its own (then stack.token()'s tokens are refused).
      ...(overrides.tokenVerifier ? {} : { jwtSecret: TEST_JWT_SECRET }),
      keys: TEST_KEYS,
      ...(pg ? { databaseUrl: pg.url } : {}),
      ...(redisUrl ? { redisUrl, redisUrls } : {}),
      ...overrides,
    });
  } catch (err) {
    await pg?.drop();
    throw err;
  }
  const adminDbs = new Map<SubgraphName, Knex>();
  if (pg) {
    const stopStack = stack.stop.bind(stack);
    stack.stop = async () => {
      await stopStack();
      for (const db of adminDbs.values()) await db.destroy();
      await pg.drop();
    };
  }
  return Object.assign(stack, {
    keys: overrides.keys ?? TEST_KEYS,
    adminDb(name: SubgraphName): Knex {
      if (!pg) return stack.dbs[name];
      if (!adminDbs.has(name)) adminDbs.set(name, openDb({ postgresUrl: pg.url, schema: name, poolMax: 2, createSchema: false }));
      return adminDbs.get(name)!;
    },
    token: (handle: string, purpose: Purpose = 'payments') => signToken(TEST_JWT_SECRET, userId(handle), purpose),
    gql: <T>(query: string, variables?: Record<string, unknown>, token?: string | null, headers: Record<string, string> = {}) =>
      postGraphQL<T>(stack.url, { query, variables }, { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }),
    async countQueries(fn: () => Promise<unknown>, only?: SubgraphName[], include?: (sql: string) => boolean) {
      let n = 0;
      const listener = (q: { sql: string }) => {
        if (!include || include(q.sql)) n += 1;
      };
      const dbs = Object.entries(stack.dbs)
        .filter(([name]) => !only || only.includes(name as SubgraphName))
        .map(([, db]) => db as Knex);
      for (const db of dbs) db.on('query', listener);
      try {
        await fn();
      } finally {
        for (const db of dbs) db.off('query', listener);
      }
      return n;
    },
  });
}
