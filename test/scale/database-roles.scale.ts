/**
 * Least privilege on PostgreSQL (lib/db-roles.ts, docs/database-roles.md), on a real server
 * (`npm run test:scale`): each subgraph's service connects as its own role, which may use only
 * its own schema, may not create anything, and may only SELECT and INSERT the append-only tables
 * (the audit log, the ledger), which it does not own; migrations run as each schema's owner.
 */
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { serviceRoleProblems, withLogin } from '../../lib/db-roles.js';
import { migrate, openDb } from '../../lib/db.js';
import { prepareDb } from '../../runtime/database.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { freshPostgresDatabase, startTestStack, type TestStack } from '../helpers/stack.js';

const serverAdminUrl = process.env.PAYGRAPH_TEST_DATABASE_URL!;

/** The append-only tables (lib/db.ts appendOnly), by schema: their service role may SELECT and INSERT only. */
const APPEND_ONLY: Record<SubgraphName, string[]> = {
  accounts: ['audit_tree', 'consent_events', 'consents', 'data_access_log', 'pseudonym_keys'],
  payments: ['account_freezes', 'journal_entries', 'outbox_events', 'postings', 'purchases', 'transfers'],
  merchants: [],
  alerts: [],
  ads: [],
};
const BOOKKEEPING = ['knex_migrations', 'knex_migrations_lock', 'paygraph_seed'];

let stack: TestStack;
/** The stack's role prefix: its database's name. */
let prefix: string;

beforeAll(async () => {
  stack = await startTestStack();
  const me = (await stack.dbs.accounts.raw('SELECT current_user AS me')).rows[0] as { me: string };
  prefix = me.me.replace(/_accounts$/, '');
});
afterAll(async () => {
  await stack?.stop();
});

async function rows<T>(db: Knex, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
  return (await db.raw(sql, bindings as Knex.RawBinding[])).rows as T[];
}

describe('the accounts service role and the audit log', () => {
  it('connects as paygraph’s accounts service role, not the owner', async () => {
    const [who] = await rows<{ me: string; owner: string }>(
      stack.dbs.accounts,
      `SELECT current_user AS me, (SELECT tableowner FROM pg_tables WHERE schemaname = 'accounts' AND tablename = 'data_access_log') AS owner`,
    );
    expect(who).toEqual({ me: `${prefix}_accounts`, owner: `${prefix}_accounts_owner` });
  });

  it('may INSERT and SELECT data_access_log', async () => {
    const db = stack.dbs.accounts;
    const record = {
      at: new Date().toISOString(),
      user_id: null,
      purpose: null,
      client: 'roles-test',
      operation_name: 'RolesTest',
      operation_hash: 'f'.repeat(64),
      coordinates: '[]',
      decision: 'REFUSED',
      layer: 'gateway',
      request_id: null,
    };
    const [inserted] = (await db('data_access_log').insert(record).returning('id')) as { id: number }[];
    expect((await db('data_access_log').where({ id: inserted!.id }).first()) as unknown).toMatchObject({ operation_name: 'RolesTest' });
  });

  it('may not DISABLE its triggers, UPDATE, DELETE, TRUNCATE, ALTER or DROP it', async () => {
    const db = stack.dbs.accounts;
    const count = async () => Number(((await db('data_access_log').count({ n: '*' }).first()) as { n: unknown }).n);
    const before = await count();
    expect(before).toBeGreaterThan(0);
    await expect(db.raw('ALTER TABLE data_access_log DISABLE TRIGGER ALL')).rejects.toThrow(/must be owner of table data_access_log/);
    await expect(db.raw('ALTER TABLE data_access_log DISABLE TRIGGER data_access_log_append_only')).rejects.toThrow(/must be owner/);
    await expect(db.raw('DELETE FROM data_access_log')).rejects.toThrow(/permission denied for table data_access_log/);
    await expect(db.raw("UPDATE data_access_log SET decision = 'ALLOWED'")).rejects.toThrow(/permission denied for table data_access_log/);
    await expect(db.raw('TRUNCATE data_access_log')).rejects.toThrow(/permission denied for table data_access_log/);
    await expect(db.raw('ALTER TABLE data_access_log ADD COLUMN note text')).rejects.toThrow(/must be owner/);
    await expect(db.raw('DROP TRIGGER data_access_log_append_only ON data_access_log')).rejects.toThrow(/must be owner/);
    await expect(db.raw('DROP TABLE data_access_log')).rejects.toThrow(/must be owner/);
    // Nor turn triggers off for its session (superuser only).
    await expect(db.raw('SET session_replication_role = replica')).rejects.toThrow(/permission denied/);
    // Nor take ownership or grant itself anything.
    await expect(db.raw(`ALTER TABLE data_access_log OWNER TO ${prefix}_accounts`)).rejects.toThrow(/must be owner/);
    await db.raw(`GRANT DELETE ON data_access_log TO ${prefix}_accounts`).catch(() => undefined); // at most a warning: "no privileges were granted"
    expect((await rows<{ d: boolean }>(db, "SELECT has_table_privilege('data_access_log', 'DELETE') AS d"))[0]).toEqual({ d: false });
    await expect(db.raw(`SET ROLE ${prefix}_accounts_owner`)).rejects.toThrow(/permission denied/);
    expect(await count()).toBe(before);
  });

  it('may create nothing: no table in its schema or public, no temporary table, no schema, no function', async () => {
    const db = stack.dbs.accounts;
    await expect(db.raw('CREATE TABLE accounts.sneaky (id int)')).rejects.toThrow(/permission denied for schema accounts/);
    await expect(db.raw('CREATE TABLE public.sneaky (id int)')).rejects.toThrow(/permission denied for schema public/);
    await expect(db.raw('CREATE TEMPORARY TABLE sneaky (id int)')).rejects.toThrow(/permission denied to create temporary tables/);
    await expect(db.raw('CREATE SCHEMA sneaky')).rejects.toThrow(/permission denied for database/);
    await expect(db.raw('CREATE FUNCTION accounts.sneaky() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql')).rejects.toThrow(
      /permission denied for schema accounts/,
    );
    await expect(db.raw('CREATE VIEW accounts.sneaky AS SELECT 1')).rejects.toThrow(/permission denied for schema accounts/);
  });
});

describe('the payments service role and the ledger', () => {
  it.each(APPEND_ONLY.payments)('%s: SELECT and INSERT only; no UPDATE, DELETE, TRUNCATE, ALTER or DISABLE TRIGGER', async (table) => {
    const db = stack.dbs.payments;
    const [p] = await rows<Record<string, boolean>>(
      db,
      `SELECT ${['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'].map((x) => `has_table_privilege(?, '${x}') AS "${x}"`).join(', ')}`,
      Array(7).fill(`payments.${table}`),
    );
    expect(p).toEqual({ SELECT: true, INSERT: true, UPDATE: false, DELETE: false, TRUNCATE: false, REFERENCES: false, TRIGGER: false });
    await expect(db.raw(`ALTER TABLE ${table} DISABLE TRIGGER ALL`)).rejects.toThrow(/must be owner/);
    await expect(db.raw(`DELETE FROM ${table}`)).rejects.toThrow(/permission denied/);
    await expect(db.raw(`UPDATE ${table} SET id = id`)).rejects.toThrow(/permission denied/);
    await expect(db.raw(`TRUNCATE ${table} CASCADE`)).rejects.toThrow(/permission denied/);
  });
});

describe('every service role, exactly', () => {
  it('has exactly its table privileges in its own schema, and none anywhere else', async () => {
    const admin = stack.adminDb('accounts');
    const PRIVILEGES = ['DELETE', 'INSERT', 'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'];
    const tables = await rows<{ schemaname: SubgraphName; tablename: string }>(
      admin,
      `SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('accounts', 'payments', 'merchants', 'alerts', 'ads') ORDER BY 1, 2`,
    );
    for (const name of SUBGRAPH_NAMES) {
      const role = `${prefix}_${name}`;
      const actual: Record<string, string> = {};
      const expected: Record<string, string> = {};
      for (const t of tables) {
        const [p] = await rows<Record<string, boolean>>(
          admin,
          `SELECT ${PRIVILEGES.map((x) => `has_table_privilege(?, ?, '${x}') AS "${x}"`).join(', ')}`,
          PRIVILEGES.flatMap(() => [role, `${t.schemaname}.${t.tablename}`]),
        );
        const key = `${t.schemaname}.${t.tablename}`;
        actual[key] = PRIVILEGES.filter((x) => p![x]).join(',');
        expected[key] =
          t.schemaname !== name
            ? ''
            : BOOKKEEPING.includes(t.tablename)
              ? 'SELECT'
              : APPEND_ONLY[name].includes(t.tablename)
                ? 'INSERT,SELECT'
                : 'DELETE,INSERT,SELECT,UPDATE';
      }
      expect(actual, role).toEqual(expected);
      // The owner owns its schema and every table in it.
      const owners = await rows<{ owner: string }>(
        admin,
        `SELECT DISTINCT tableowner AS owner FROM pg_tables WHERE schemaname = ?
          UNION SELECT DISTINCT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ?`,
        [name, name],
      );
      expect(owners.map((o) => o.owner)).toEqual([`${role}_owner`]);
    }
    // Sequences: those of the tables it inserts into, not the bookkeeping ones.
    const [seq] = await rows<{ log: boolean; migrations: boolean }>(
      admin,
      "SELECT has_sequence_privilege(?, 'accounts.data_access_log_id_seq', 'USAGE') AS log, has_sequence_privilege(?, 'accounts.knex_migrations_id_seq', 'USAGE') AS migrations",
      [`${prefix}_accounts`, `${prefix}_accounts`],
    );
    expect(seq).toEqual({ log: true, migrations: false });
  });

  it('are plain login roles, members of nothing, and pass the service check', async () => {
    const admin = stack.adminDb('accounts');
    const roles = await rows<Record<string, unknown>>(
      admin,
      `SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolreplication, rolbypassrls, rolcanlogin,
              (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
         FROM pg_roles r WHERE starts_with(rolname, ?) ORDER BY 1`,
      [`${prefix}_`],
    );
    expect(roles.map((r) => r.rolname)).toEqual(SUBGRAPH_NAMES.flatMap((n) => [`${prefix}_${n}`, `${prefix}_${n}_owner`]).sort());
    for (const r of roles)
      expect(r, String(r.rolname)).toMatchObject({
        rolsuper: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolinherit: false,
        rolreplication: false,
        rolbypassrls: false,
        rolcanlogin: true,
        memberships: 0,
      });
    for (const name of SUBGRAPH_NAMES)
      expect(
        await serviceRoleProblems(
          stack.dbs[name],
          name,
          SUBGRAPH_NAMES.filter((n) => n !== name),
        ),
      ).toEqual([]);
  });
});

describe('isolation between schemas', () => {
  it('the ads role may read no table of another schema', async () => {
    const admin = stack.adminDb('accounts');
    const others = await rows<{ schemaname: string; tablename: string }>(
      admin,
      `SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('accounts', 'payments', 'merchants', 'alerts') ORDER BY 1, 2`,
    );
    expect(others.map((t) => `${t.schemaname}.${t.tablename}`)).toEqual(expect.arrayContaining(['accounts.accounts', 'payments.postings']));
    for (const t of others)
      await expect(stack.dbs.ads.raw(`SELECT * FROM ${t.schemaname}.${t.tablename} LIMIT 1`), `${t.schemaname}.${t.tablename}`).rejects.toThrow(
        new RegExp(`permission denied for schema ${t.schemaname}`),
      );
    // Its own schema, it may.
    expect((await stack.dbs.ads('offers').count({ n: '*' }).first()) as unknown).toBeDefined();
  });

  it('no service role may use another subgraph’s schema', async () => {
    for (const name of SUBGRAPH_NAMES) {
      const usable = await rows<{ nspname: string }>(
        stack.dbs[name],
        `SELECT nspname FROM pg_namespace WHERE nspname IN ('accounts', 'payments', 'merchants', 'alerts', 'ads') AND has_schema_privilege(oid, 'USAGE') ORDER BY 1`,
      );
      expect(usable.map((u) => u.nspname)).toEqual([name]);
    }
  });
});

describe('provisioning', () => {
  let database: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  beforeAll(async () => {
    database = await freshPostgresDatabase(serverAdminUrl);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('a schema migrated before the roles existed is handed over to its owner', async () => {
    // The old way: the admin's own role migrates and owns everything.
    const legacy = openDb({ postgresUrl: database.url, schema: 'accounts', poolMax: 2 });
    await migrate(legacy, SUBGRAPHS.accounts.migrations);
    await legacy.destroy();
    const { db, seeded } = await prepareDb('accounts', ':memory:', database.url, { poolMax: 2 });
    try {
      expect(seeded).toBe(true);
      const owners = await rows<{ owner: string }>(db, "SELECT DISTINCT tableowner AS owner FROM pg_tables WHERE schemaname = 'accounts'");
      expect(owners).toEqual([{ owner: `${database.name}_accounts_owner` }]);
      expect(Number(((await db('users').count({ n: '*' }).first()) as { n: unknown }).n)).toBeGreaterThan(0);
      await expect(db.raw('DELETE FROM data_access_log')).rejects.toThrow(/permission denied/);
      expect(await serviceRoleProblems(db, 'accounts', ['payments'])).toEqual([]);
    } finally {
      await db.destroy();
    }
  });

  it('an admin that is no superuser (CREATEROLE, owner of the database) provisions the roles too', async () => {
    const other = await freshPostgresDatabase(serverAdminUrl);
    const server = openDb({ postgresUrl: other.url, schema: 'public', poolMax: 1, createSchema: false });
    try {
      const adminRole = `${other.name}_admin`;
      await server.raw(`CREATE ROLE ${adminRole} LOGIN CREATEROLE PASSWORD 'admin-pass-for-tests'`);
      await server.raw(`ALTER DATABASE ${other.name} OWNER TO ${adminRole}`);
      const adminUrl = withLogin(other.url, { name: adminRole, password: 'admin-pass-for-tests' });
      for (const name of ['accounts', 'ads'] as const) {
        const { db, seeded } = await prepareDb(name, ':memory:', adminUrl, { production: true, poolMax: 2 });
        try {
          expect(seeded).toBe(true);
          expect(((await db.raw('SELECT current_user AS me')).rows[0] as { me: string }).me).toBe(`${other.name}_${name}`);
        } finally {
          await db.destroy();
        }
      }
      const again = await prepareDb('accounts', ':memory:', adminUrl, { production: true, poolMax: 2 });
      await again.db.destroy();
      expect(again.seeded).toBe(false);
    } finally {
      await server.destroy();
      await other.drop();
    }
  });

  it('an admin that may not create roles is refused, saying what it needs', async () => {
    const other = await freshPostgresDatabase(serverAdminUrl);
    const server = openDb({ postgresUrl: other.url, schema: 'public', poolMax: 1, createSchema: false });
    try {
      const plain = `${other.name}_plain`;
      await server.raw(`CREATE ROLE ${plain} LOGIN PASSWORD 'plain-pass-for-tests'`);
      await server.raw(`ALTER DATABASE ${other.name} OWNER TO ${plain}`);
      await expect(prepareDb('ads', ':memory:', withLogin(other.url, { name: plain, password: 'plain-pass-for-tests' }), { poolMax: 2 })).rejects.toThrow(
        /_plain, the admin .* may not create roles: use a superuser, or a role with CREATEROLE/,
      );
    } finally {
      await server.destroy();
      await other.drop();
    }
  });

  it('roles named in per-subgraph URLs (production) are created by the admin with those passwords; a service given only its URL then starts', async () => {
    const service = withLogin(database.url, { name: `${database.name}_custom_svc`, password: 'service pass: with "quotes" and \'more\'' });
    const owner = withLogin(database.url, { name: `${database.name}_custom_own`, password: 'owner-pass' });
    const first = await prepareDb('merchants', ':memory:', { adminUrl: database.url, serviceUrl: service, migrateUrl: owner }, { production: true });
    await first.db.destroy();
    expect(first.seeded).toBe(true);
    const { db, seeded } = await prepareDb('merchants', ':memory:', { serviceUrl: service }, { production: true });
    try {
      expect(seeded).toBe(false);
      expect(((await db.raw('SELECT current_user AS me')).rows[0] as { me: string }).me).toBe(`${database.name}_custom_svc`);
      expect(Number(((await db('merchants').count({ n: '*' }).first()) as { n: unknown }).n)).toBeGreaterThan(0);
    } finally {
      await db.destroy();
    }
  });

  it('production refuses a service role that is not least-privilege, and a schema its service role cannot migrate', async () => {
    await expect(prepareDb('merchants', ':memory:', { serviceUrl: database.url }, { production: true })).rejects.toThrow(
      /merchants: the service's database role is not least-privilege: .* is a superuser/,
    );
    const warnings: string[] = [];
    const dev = await prepareDb('merchants', ':memory:', { serviceUrl: database.url }, { log: (m) => warnings.push(m) });
    await dev.db.destroy();
    expect(warnings.join('\n')).toMatch(/warning: merchants: the service's database role is not least-privilege: .* is a superuser/);
    // Nor may a service run as its schema's owner.
    const owner = withLogin(database.url, { name: `${database.name}_custom_own`, password: 'owner-pass' });
    await expect(prepareDb('merchants', ':memory:', { serviceUrl: owner }, { production: true })).rejects.toThrow(
      /not least-privilege: .*_custom_own owns schema merchants; .*_custom_own owns knex_migrations.*merchants/,
    );
    // A service role on a schema nobody migrated: production says what to run.
    const svc = withLogin(database.url, { name: `${database.name}_custom_svc`, password: 'service pass: with "quotes" and \'more\'' });
    await expect(prepareDb('ads', ':memory:', { serviceUrl: svc }, { production: true })).rejects.toThrow(
      /ads: schema ads is not migrated .*PAYGRAPH_ADS_MIGRATE_DATABASE_URL or PAYGRAPH_DATABASE_ADMIN_URL/,
    );
    // Development tries to migrate as that role, which may not.
    await expect(prepareDb('ads', ':memory:', { serviceUrl: svc })).rejects.toThrow(/ads: schema ads is not migrated and .*_custom_svc may not migrate it/);
  });
});
