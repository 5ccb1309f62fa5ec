/**
 * Least privilege on PostgreSQL (docs/database-roles.md): every subgraph's schema is owned by a
 * role of its own (`<prefix>_<subgraph>_owner`, which runs the migrations), and its service
 * connects as another role (`<prefix>_<subgraph>`) that may use that schema only: USAGE on it, the
 * DML its tables need (SELECT and INSERT only on the append-only ones), its sequences, nothing of
 * the other schemas, and no right to create anything. This module creates those roles (with an
 * admin connection), grants the service role its rights (as the owner, after migrating), checks a
 * service connection, and keeps development passwords in the data directory.
 *
 * SQLite has no roles: nothing here applies to it.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';

/** The two roles of one subgraph's schema. */
export interface SchemaRoles {
  /** Owns the schema and its tables; migrations run as it. */
  owner: string;
  /** What the running service connects as. */
  service: string;
}

/** A role and, when paygraph sets it, its password. */
export interface RoleLogin {
  name: string;
  /** undefined: leave the role's password as it is (e.g. a URL without one: certificate or peer authentication). */
  password?: string;
}

const NAME = /^[a-z_][a-z0-9_]*$/;
/** PostgreSQL truncates identifiers to 63 bytes; `<prefix>_merchants_owner` must fit. */
export const MAX_ROLE_PREFIX_LENGTH = 63 - '_merchants_owner'.length;

/** Throws unless `prefix` can start a role name of paygraph's (lower-case letters, digits, underscores). */
export function checkRolePrefix(prefix: string, source = 'PAYGRAPH_DATABASE_ROLE_PREFIX'): string {
  if (!NAME.test(prefix) || prefix.length > MAX_ROLE_PREFIX_LENGTH)
    throw new Error(
      `${source} must be lower-case letters, digits and underscores (starting with a letter), at most ${MAX_ROLE_PREFIX_LENGTH} long; got "${prefix}"`,
    );
  return prefix;
}

/** The database name of a PostgreSQL URL (`postgres://host/paygraph` -> `paygraph`). */
export function databaseNameOf(url: string): string {
  return decodeURIComponent(parseUrl(url).pathname.replace(/^\//, ''));
}

/**
 * The default role prefix: the database's name (so `paygraph` gives `paygraph_accounts` and
 * `paygraph_accounts_owner`), made a valid name. Roles belong to the server, not to a database:
 * two paygraph databases on one server get different roles this way.
 */
export function defaultRolePrefix(url: string): string {
  if (databaseNameOf(url) === '') throw new Error(`${redactUrl(url)} names no database: add /<database> to it, or set PAYGRAPH_DATABASE_ROLE_PREFIX`);
  let p = databaseNameOf(url)
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_');
  if (!/^[a-z_]/.test(p)) p = `db_${p}`;
  return checkRolePrefix(p.slice(0, MAX_ROLE_PREFIX_LENGTH), `the database name of ${redactUrl(url)} (set PAYGRAPH_DATABASE_ROLE_PREFIX)`);
}

export function schemaRoles(prefix: string, schema: string): SchemaRoles {
  return { owner: `${prefix}_${schema}_owner`, service: `${prefix}_${schema}` };
}

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new Error(`not a PostgreSQL URL: ${redactUrl(url)}`);
  }
}

/** `url` with another user and password (same server, database and parameters). */
export function withLogin(url: string, login: RoleLogin): string {
  const u = parseUrl(url);
  u.username = encodeURIComponent(login.name);
  u.password = login.password === undefined ? '' : encodeURIComponent(login.password);
  return u.toString();
}

/** The role a URL logs in as, and its password (undefined when the URL has none). */
export function loginOf(url: string): RoleLogin {
  const u = parseUrl(url);
  if (!u.username) throw new Error(`${redactUrl(url)} names no user`);
  return { name: decodeURIComponent(u.username), password: u.password ? decodeURIComponent(u.password) : undefined };
}

/** Whether two URLs reach the same database (host, port and database name). */
export function sameDatabase(a: string, b: string): boolean {
  const ua = parseUrl(a);
  const ub = parseUrl(b);
  return ua.hostname === ub.hostname && (ua.port || '5432') === (ub.port || '5432') && ua.pathname === ub.pathname;
}

/** A URL with its password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

// --- development passwords -----------------------------------------------------------------------

/** Where development role passwords live, under the data directory (mode 0600). */
export const ROLE_PASSWORDS_FILE = 'database-roles.json';

/** Passwords of installs whose data directory is ':memory:' (tests): this process only. */
const memoryPasswords = new Map<string, string>();

function readPasswords(file: string): Record<string, string> | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((p) => typeof p === 'string' && p.length >= 32))
      return v as Record<string, string>;
    throw new Error(`${file} is not a paygraph database roles file; delete it (the next migrate creates the roles' passwords again)`);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The development passwords of `roles`, from `<dataDir>/database-roles.json` (':memory:': this
 * process's memory). With `create`, missing ones are generated and written (the file is created
 * 0600, in a 0700 directory, and only the first of several processes starting together writes
 * it); without, a missing one is an error saying how to create it.
 */
export function rolePasswords(dataDir: string, roles: readonly string[], opts: { create: boolean }): Record<string, string> {
  const fresh = () => randomBytes(32).toString('base64url');
  if (dataDir === ':memory:') {
    const out: Record<string, string> = {};
    for (const r of roles) {
      if (!memoryPasswords.has(r)) {
        if (!opts.create) throw new Error(`no password for database role ${r} in this process: migrate first`);
        memoryPasswords.set(r, fresh());
      }
      out[r] = memoryPasswords.get(r)!;
    }
    return out;
  }
  const file = path.join(dataDir, ROLE_PASSWORDS_FILE);
  let known = readPasswords(file);
  const missing = roles.filter((r) => !known?.[r]);
  if (missing.length > 0) {
    if (!opts.create)
      throw new Error(
        `no password for database role(s) ${missing.join(', ')} in ${file}: run \`node --import tsx scripts/serve.ts migrate\` with PAYGRAPH_DATABASE_ADMIN_URL (or DATABASE_URL in development) first, or give the subgraph's PAYGRAPH_<NAME>_DATABASE_URL`,
      );
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const merged = { ...known, ...Object.fromEntries(missing.map((r) => [r, fresh()])) };
    const body = `${JSON.stringify(merged, null, 2)}\n`;
    if (known === null) {
      try {
        // `wx`: of several processes creating it at once, the first writes; the others read its file.
        fs.writeFileSync(file, body, { flag: 'wx', mode: 0o600 });
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
        return rolePasswords(dataDir, roles, opts);
      }
    } else {
      // New roles for an existing file (another role prefix): replace it whole, atomically.
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, body, { mode: 0o600 });
      fs.renameSync(tmp, file);
    }
    known = merged;
  }
  return Object.fromEntries(roles.map((r) => [r, known![r]!]));
}

// --- SQL ------------------------------------------------------------------------------------------

/** A quoted SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A SCRAM-SHA-256 verifier of `password` (RFC 7677, what PostgreSQL stores): CREATE/ALTER ROLE
 * send this rather than the password, so the password itself never reaches the server's logs.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A login and nothing else. (A non-superuser admin may not even name SUPERUSER, REPLICATION or BYPASSRLS: its roles never have them.) */
const roleAttributes = (superuser: boolean) => `LOGIN NOCREATEDB NOCREATEROLE NOINHERIT${superuser ? ' NOSUPERUSER NOREPLICATION NOBYPASSRLS' : ''}`;

async function ensureRole(admin: Knex, login: RoleLogin, superuser: boolean): Promise<void> {
  const ROLE_ATTRIBUTES = roleAttributes(superuser);
  const password = login.password === undefined ? '' : ` PASSWORD ${literal(scramVerifier(login.password))}`;
  const exists = await admin.raw('SELECT 1 FROM pg_roles WHERE rolname = ?', [login.name]);
  if (exists.rows.length === 0) {
    try {
      await admin.raw(`CREATE ROLE ${ident(login.name)} ${ROLE_ATTRIBUTES}${password}`);
      return;
    } catch (err) {
      // Created meanwhile by a process migrating another database of the same server: alter it.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  }
  await admin.raw(`ALTER ROLE ${ident(login.name)} ${ROLE_ATTRIBUTES}${password}`);
}

interface RelationRow {
  name: string;
  kind: string;
  owner: string;
}

/**
 * Creates (or brings up to date) the roles of one schema, as an admin (a superuser, or a role with
 * CREATEROLE that owns the database): both roles with LOGIN and no other attribute, the schema
 * owned by `owner` (a schema and objects from before the roles existed are handed over to it),
 * USAGE on it for `service` and for nobody else, CONNECT on the database for both; and, for the
 * whole database, no CREATE on schema `public` and no TEMPORARY for PUBLIC (so that the service
 * roles can create nothing at all). The caller serializes provisioning (an advisory lock).
 */
export async function provisionSchemaRoles(admin: Knex, schema: string, roles: { owner: RoleLogin; service: RoleLogin }): Promise<void> {
  if (!NAME.test(schema)) throw new Error(`bad schema name ${schema}`);
  const me = (
    await admin.raw(
      'SELECT current_user AS me, r.rolsuper AS su, r.rolcreaterole AS cr, current_database() AS db FROM pg_roles r WHERE r.rolname = current_user',
    )
  ).rows[0] as { me: string; su: boolean; cr: boolean; db: string };
  if (!me.su && !me.cr)
    throw new Error(
      `${me.me}, the admin (PAYGRAPH_DATABASE_ADMIN_URL, or DATABASE_URL in development), may not create roles: use a superuser, or a role with CREATEROLE that owns database ${me.db} (docs/database-roles.md)`,
    );
  await ensureRole(admin, roles.owner, me.su);
  await ensureRole(admin, roles.service, me.su);
  // A non-superuser admin creates the schema for the owner and hands objects over to it: it must
  // be a member of the owner role to do that.
  if (!me.su) await admin.raw(`GRANT ${ident(roles.owner.name)} TO ${ident(me.me)}`);
  const nsp = (await admin.raw('SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = ?', [schema])).rows[0] as
    { owner: string } | undefined;
  if (!nsp) await admin.raw(`CREATE SCHEMA ${ident(schema)} AUTHORIZATION ${ident(roles.owner.name)}`);
  else if (nsp.owner !== roles.owner.name) await admin.raw(`ALTER SCHEMA ${ident(schema)} OWNER TO ${ident(roles.owner.name)}`);
  await adoptObjects(admin, schema, roles.owner.name);
  await admin.raw(`REVOKE ALL ON SCHEMA ${ident(schema)} FROM PUBLIC`);
  await admin.raw(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(roles.service.name)}`);
  await admin.raw(`GRANT CONNECT ON DATABASE ${ident(me.db)} TO ${ident(roles.owner.name)}, ${ident(roles.service.name)}`);
  await admin.raw(`REVOKE TEMPORARY ON DATABASE ${ident(me.db)} FROM PUBLIC`);
  if ((await admin.raw("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).rows.length > 0) await admin.raw('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
}

/** Hands every table, view, sequence and function of `schema` that `owner` does not own over to it (databases from before the roles). */
async function adoptObjects(admin: Knex, schema: string, owner: string): Promise<void> {
  const relations = async () =>
    (
      await admin.raw(
        `SELECT c.relname AS name, c.relkind AS kind, pg_get_userbyid(c.relowner) AS owner
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ? AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND pg_get_userbyid(c.relowner) <> ?`,
        [schema, owner],
      )
    ).rows as RelationRow[];
  // Tables first: their sequences (serial, identity) follow them.
  for (const r of (await relations()).filter((x) => x.kind !== 'S')) await admin.raw(`ALTER TABLE ${ident(schema)}.${ident(r.name)} OWNER TO ${ident(owner)}`);
  for (const r of await relations()) await admin.raw(`ALTER SEQUENCE ${ident(schema)}.${ident(r.name)} OWNER TO ${ident(owner)}`);
  const functions = (
    await admin.raw(
      `SELECT p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ? AND pg_get_userbyid(p.proowner) <> ?`,
      [schema, owner],
    )
  ).rows as { name: string }[];
  for (const f of functions) await admin.raw(`ALTER ROUTINE ${f.name} OWNER TO ${ident(owner)}`);
}

/** knex's and paygraph's bookkeeping tables: the service reads them (to see that its schema is migrated), never writes them. */
export const BOOKKEEPING_TABLES: readonly string[] = ['knex_migrations', 'knex_migrations_lock', 'paygraph_seed'];

/** What the service role of a schema may do on each of its tables (see grantServiceRole). */
export type TablePrivileges = 'SELECT' | 'SELECT, INSERT' | 'SELECT, INSERT, UPDATE, DELETE';

/**
 * Grants `service` what it needs in `schema`, and nothing more, as the schema's owner (after every
 * migration, in one transaction, so a service already running never sees a gap):
 * - USAGE on the schema (no CREATE);
 * - append-only tables (those with lib/db.ts appendOnly's `<table>_append_only` trigger): SELECT, INSERT;
 * - the bookkeeping tables (BOOKKEEPING_TABLES): SELECT;
 * - every other table: SELECT, INSERT, UPDATE, DELETE (no TRUNCATE, REFERENCES or TRIGGER);
 * - USAGE, SELECT on the sequences of the tables it may insert into.
 * Returns the privileges given, by table.
 */
export async function grantServiceRole(owner: Knex, schema: string, service: string): Promise<Record<string, TablePrivileges>> {
  const granted: Record<string, TablePrivileges> = {};
  await owner.transaction(async (trx) => {
    const s = ident(schema);
    const r = ident(service);
    await trx.raw(`GRANT USAGE ON SCHEMA ${s} TO ${r}`);
    await trx.raw(`REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`);
    await trx.raw(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${s} FROM ${r}`);
    const tables = (
      await trx.raw(
        `SELECT c.relname AS name,
                EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = c.relname || '_append_only' AND NOT t.tgisinternal) AS append_only
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ? AND c.relkind IN ('r', 'p')
          ORDER BY c.relname`,
        [schema],
      )
    ).rows as { name: string; append_only: boolean }[];
    for (const t of tables) {
      const privileges: TablePrivileges = BOOKKEEPING_TABLES.includes(t.name) ? 'SELECT' : t.append_only ? 'SELECT, INSERT' : 'SELECT, INSERT, UPDATE, DELETE';
      await trx.raw(`GRANT ${privileges} ON ${s}.${ident(t.name)} TO ${r}`);
      granted[t.name] = privileges;
    }
    const sequences = (
      await trx.raw(
        `SELECT s.relname AS name, t.relname AS table_name
           FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
           LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
           LEFT JOIN pg_class t ON t.oid = d.refobjid
          WHERE n.nspname = ? AND s.relkind = 'S'`,
        [schema],
      )
    ).rows as { name: string; table_name: string | null }[];
    for (const q of sequences) {
      if (q.table_name !== null && granted[q.table_name] === 'SELECT') continue;
      await trx.raw(`GRANT USAGE, SELECT ON SEQUENCE ${s}.${ident(q.name)} TO ${r}`);
    }
  });
  return granted;
}

/**
 * What a service connection may do beyond its schema's needs: empty for a least-privilege
 * service role. `otherSchemas`: the other subgraphs' schemas, which it must not be able to use.
 */
export async function serviceRoleProblems(db: Knex, schema: string, otherSchemas: readonly string[]): Promise<string[]> {
  const row = (
    await db.raw(
      `SELECT current_user AS role, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
              pg_has_role(n.nspowner, 'MEMBER') AS owns_schema,
              has_schema_privilege(n.oid, 'CREATE') AS create_in_schema,
              has_database_privilege(current_database(), 'CREATE') AS create_schemas,
              has_database_privilege(current_database(), 'TEMPORARY') AS temporary,
              COALESCE((SELECT has_schema_privilege(p.oid, 'CREATE') FROM pg_namespace p WHERE p.nspname = 'public'), false) AS create_in_public,
              ARRAY(SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND pg_has_role(c.relowner, 'MEMBER') ORDER BY 1) AS owned,
              ARRAY(SELECT o.nspname::text FROM pg_namespace o WHERE o.nspname = ANY (string_to_array(?, ',')) AND has_schema_privilege(o.oid, 'USAGE') ORDER BY 1) AS other_schemas
         FROM pg_roles r, pg_namespace n
        WHERE r.rolname = current_user AND n.nspname = ?`,
      [otherSchemas.join(','), schema],
    )
  ).rows[0] as
    | {
        role: string;
        rolsuper: boolean;
        rolcreaterole: boolean;
        rolcreatedb: boolean;
        rolbypassrls: boolean;
        rolreplication: boolean;
        owns_schema: boolean;
        create_in_schema: boolean;
        create_schemas: boolean;
        temporary: boolean;
        create_in_public: boolean;
        owned: string[];
        other_schemas: string[];
      }
    | undefined;
  if (!row) return [`schema ${schema} does not exist`];
  if (row.rolsuper) return [`${row.role} is a superuser`];
  const problems: string[] = [];
  for (const [flag, name] of [
    [row.rolcreaterole, 'CREATEROLE'],
    [row.rolcreatedb, 'CREATEDB'],
    [row.rolbypassrls, 'BYPASSRLS'],
    [row.rolreplication, 'REPLICATION'],
  ] as const)
    if (flag) problems.push(`${row.role} has ${name}`);
  if (row.owns_schema) problems.push(`${row.role} owns schema ${schema}`);
  if (row.owned.length > 0) problems.push(`${row.role} owns ${row.owned.join(', ')}`);
  if (row.create_in_schema && !row.owns_schema) problems.push(`${row.role} may create objects in schema ${schema}`);
  if (row.create_schemas) problems.push(`${row.role} may create schemas`);
  if (row.temporary) problems.push(`${row.role} may create temporary tables`);
  if (row.create_in_public) problems.push(`${row.role} may create objects in schema public`);
  if (row.other_schemas.length > 0) problems.push(`${row.role} may use schema(s) ${row.other_schemas.join(', ')}`);
  return problems;
}
