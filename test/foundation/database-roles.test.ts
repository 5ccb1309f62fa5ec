/**
 * Database roles without a database (lib/db-roles.ts, runtime/database.ts, runtime/cluster.ts):
 * role names, where each subgraph's URLs come from, development passwords in the data directory,
 * the configuration variables, and the environment a cluster gives each process. What the roles
 * may do on a real PostgreSQL is test/scale/database-roles.scale.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { defaultRolePrefix, loginOf, ROLE_PASSWORDS_FILE, rolePasswords, sameDatabase, scramVerifier, withLogin } from '../../lib/db-roles.js';
import { isDatabaseVariable, serviceEnv } from '../../runtime/cluster.js';
import { pgDatabaseOf, planPg } from '../../runtime/database.js';

const dirs: string[] = [];
const install = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-roles-'));
  dirs.push(dir);
  return path.join(dir, 'data');
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('role names', () => {
  it('start with the database name by default, made a valid name', () => {
    expect(defaultRolePrefix('postgres://u:p@db:5432/paygraph')).toBe('paygraph');
    expect(defaultRolePrefix('postgres://db/Pay-Graph.Dev')).toBe('pay_graph_dev');
    expect(defaultRolePrefix('postgres://db/2026')).toBe('db_2026');
    expect(defaultRolePrefix(`postgres://db/${'x'.repeat(80)}`)).toHaveLength(47);
    expect(() => defaultRolePrefix('postgres://u:secret@db:5432')).toThrow(/postgres:\/\/u:\*\*\*@db:5432 names no database/);
  });

  it('PAYGRAPH_DATABASE_ROLE_PREFIX must be a plain lower-case name', () => {
    expect(loadConfig({ PAYGRAPH_DATA_DIR: install(), PAYGRAPH_DATABASE_ROLE_PREFIX: 'shop_pay' }).databaseRolePrefix).toBe('shop_pay');
    expect(() => loadConfig({ PAYGRAPH_DATABASE_ROLE_PREFIX: 'Shop-Pay' })).toThrow(/PAYGRAPH_DATABASE_ROLE_PREFIX must be/);
    expect(() => loadConfig({ PAYGRAPH_DATABASE_ROLE_PREFIX: 'x'.repeat(48) })).toThrow(/at most 47/);
  });
});

describe('database variables', () => {
  it('are postgres:// URLs, checked at start and named when wrong', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://db/x' })).toThrow(/DATABASE_URL must be a postgres:\/\/ URL/);
    expect(() => loadConfig({ PAYGRAPH_ADS_MIGRATE_DATABASE_URL: 'not a url' })).toThrow(/PAYGRAPH_ADS_MIGRATE_DATABASE_URL is not a URL/);
    expect(() => loadConfig({ PAYGRAPH_DATABASE_ADMIN_URL: 'http://db/x' })).toThrow(/PAYGRAPH_DATABASE_ADMIN_URL must be a postgres/);
  });

  it('DATABASE_URL is the admin in development only; PAYGRAPH_DATABASE_ADMIN_URL always', () => {
    const dataDir = install();
    expect(loadConfig({ PAYGRAPH_DATA_DIR: dataDir, DATABASE_URL: 'postgres://a/x' }).databaseAdminUrl).toBe('postgres://a/x');
    const secrets = { PAYGRAPH_JWT_SECRET: 'j'.repeat(40), PAYGRAPH_GATEWAY_SECRET: 'g'.repeat(40), NODE_ENV: 'production' };
    expect(loadConfig({ ...secrets, DATABASE_URL: 'postgres://a/x' }).databaseAdminUrl).toBeUndefined();
    expect(loadConfig({ ...secrets, DATABASE_URL: 'postgres://a/x', PAYGRAPH_DATABASE_ADMIN_URL: 'postgres://root@a/x' }).databaseAdminUrl).toBe(
      'postgres://root@a/x',
    );
    expect(pgDatabaseOf(loadConfig({ PAYGRAPH_DATA_DIR: dataDir }), 'accounts')).toBeUndefined();
  });
});

describe('development passwords', () => {
  it('are random, created once in <data dir>/database-roles.json (0600, directory 0700), and read back', () => {
    const dataDir = install();
    const first = rolePasswords(dataDir, ['p_accounts', 'p_accounts_owner'], { create: true });
    expect(first.p_accounts).not.toBe(first.p_accounts_owner);
    expect(first.p_accounts!.length).toBeGreaterThanOrEqual(32);
    const file = path.join(dataDir, ROLE_PASSWORDS_FILE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dataDir).mode & 0o077).toBe(0);
    expect(rolePasswords(dataDir, ['p_accounts'], { create: false })).toEqual({ p_accounts: first.p_accounts });
    // Another prefix later: added, the earlier ones kept.
    const more = rolePasswords(dataDir, ['q_ads', 'p_accounts'], { create: true });
    expect(more.p_accounts).toBe(first.p_accounts);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(() => rolePasswords(dataDir, ['r_ads'], { create: false })).toThrow(/no password for database role\(s\) r_ads .*serve\.ts migrate/);
  });

  it('refuse a damaged file instead of replacing it; stay in memory for a :memory: install', () => {
    const dataDir = install();
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, ROLE_PASSWORDS_FILE), '{"p_ads":"short"}');
    expect(() => rolePasswords(dataDir, ['p_ads'], { create: true })).toThrow(/not a paygraph database roles file/);
    const a = rolePasswords(':memory:', ['memtest_ads'], { create: true });
    expect(rolePasswords(':memory:', ['memtest_ads'], { create: false })).toEqual(a);
    expect(() => rolePasswords(':memory:', ['memtest_other'], { create: false })).toThrow(/migrate first/);
  });

  it('reach the server as SCRAM-SHA-256 verifiers, never as the password', () => {
    const v = scramVerifier('secret', Buffer.alloc(16, 1));
    expect(v).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(v).not.toContain('secret');
    expect(scramVerifier('secret', Buffer.alloc(16, 1))).toBe(v);
    expect(scramVerifier('secret')).not.toBe(v);
  });
});

describe("each subgraph's URLs (runtime/database.ts planPg)", () => {
  const admin = 'postgres://root:rootpw@db.internal:5432/paygraph?sslmode=require';

  it('development: its own roles on the database, passwords from the data dir; migrations as the owner, where the admin connects', () => {
    const dataDir = install();
    const plan = planPg('payments', dataDir, { url: 'postgres://root:rootpw@pooler:6432/paygraph', adminUrl: admin }, { migrating: true });
    const passwords = JSON.parse(fs.readFileSync(path.join(dataDir, ROLE_PASSWORDS_FILE), 'utf8')) as Record<string, string>;
    expect(loginOf(plan.serviceUrl)).toEqual({ name: 'paygraph_payments', password: passwords.paygraph_payments });
    expect(new URL(plan.serviceUrl).host).toBe('pooler:6432');
    expect(loginOf(plan.migrateUrl!)).toEqual({ name: 'paygraph_payments_owner', password: passwords.paygraph_payments_owner });
    expect(new URL(plan.migrateUrl!).host).toBe('db.internal:5432');
    expect(new URL(plan.migrateUrl!).searchParams.get('sslmode')).toBe('require');
    expect(plan.admin).toMatchObject({ url: admin, owner: { name: 'paygraph_payments_owner' }, service: { name: 'paygraph_payments' } });
    // A process that does not migrate (a cluster's supervisor, a production service) only reads them.
    const reader = planPg('payments', dataDir, { url: 'postgres://root:rootpw@pooler:6432/paygraph' }, { migrating: false });
    expect(reader.serviceUrl).toBe(plan.serviceUrl);
    expect(reader.migrateUrl).toBeUndefined();
    expect(() => planPg('ads', install(), { url: 'postgres://x@db/paygraph' }, { migrating: true })).toThrow(/no password for database role\(s\) paygraph_ads/);
    expect(() => planPg('ads', install(), { url: 'postgres://x@db/one', adminUrl: 'postgres://x@db/two' }, { migrating: true })).toThrow(/different databases/);
    expect(planPg('ads', dataDir, { url: admin, adminUrl: admin, rolePrefix: 'shop' }, { migrating: true }).serviceRole).toBe('shop_ads');
  });

  it('production: the URLs given; the admin creates their roles only on its own database', () => {
    const service = 'postgres://svc:s%40pw@db.internal/paygraph';
    const owner = 'postgres://own:opw@db.internal:5432/paygraph';
    const plan = planPg('ads', install(), { adminUrl: admin, serviceUrl: service, migrateUrl: owner }, { migrating: true });
    expect(plan).toEqual({
      serviceUrl: service,
      serviceRole: 'svc',
      migrateUrl: owner,
      admin: { url: admin, owner: { name: 'own', password: 'opw' }, service: { name: 'svc', password: 's@pw' } },
    });
    const elsewhere = planPg(
      'ads',
      install(),
      { adminUrl: admin, serviceUrl: 'postgres://svc:pw@ledger/paygraph', migrateUrl: 'postgres://own:pw@ledger/paygraph' },
      { migrating: true },
    );
    expect(elsewhere.admin).toBeUndefined();
    expect(planPg('ads', install(), { serviceUrl: service }, { migrating: true })).toEqual({
      serviceUrl: service,
      serviceRole: 'svc',
      migrateUrl: undefined,
      admin: undefined,
    });
    expect(sameDatabase('postgres://a@h/db', 'postgres://b@h:5432/db')).toBe(true);
    expect(sameDatabase('postgres://a@h/db', 'postgres://a@h/other')).toBe(false);
  });

  it('withLogin keeps the server, database and parameters, and any password survives the round trip', () => {
    const url = withLogin(admin, { name: 'r', password: `p@ss:w/rd "'%?#` });
    expect(loginOf(url)).toEqual({ name: 'r', password: `p@ss:w/rd "'%?#` });
    expect(url.replace(/\/\/[^@]*@/, '//')).toBe('postgres://db.internal:5432/paygraph?sslmode=require');
  });
});

describe('a cluster process environment (runtime/cluster.ts serviceEnv)', () => {
  const env = {
    PATH: '/usr/bin',
    PAYGRAPH_DB_POOL_MAX: '4',
    REDIS_URL: 'redis://r',
    DATABASE_URL: 'postgres://root:pw@db/paygraph',
    PAYGRAPH_DATABASE_ADMIN_URL: 'postgres://root:pw@db/paygraph',
    PAYGRAPH_DATABASE_ROLE_PREFIX: 'p',
    PAYGRAPH_ACCOUNTS_DATABASE_URL: 'postgres://acc:pw@db/paygraph',
    PAYGRAPH_PAYMENTS_MIGRATE_DATABASE_URL: 'postgres://own:pw@db/paygraph',
    PAYGRAPH_TEST_DATABASE_URL: 'postgres://root:pw@db/postgres',
    PGPASSWORD: 'pw',
  };

  it('a subgraph gets its own service URL and no other database setting; the gateway none', () => {
    // (Ads uses no Redis, the gateway only for its shared rate limit: test/foundation/redis-acl.test.ts.)
    expect(serviceEnv('ads', env, 'postgres://ads:pw@db/paygraph')).toEqual({
      PATH: '/usr/bin',
      PAYGRAPH_DB_POOL_MAX: '4',
      PAYGRAPH_ADS_DATABASE_URL: 'postgres://ads:pw@db/paygraph',
    });
    expect(serviceEnv('merchants', env, 'postgres://m:pw@db/paygraph')).toEqual({
      PATH: '/usr/bin',
      PAYGRAPH_DB_POOL_MAX: '4',
      REDIS_URL: 'redis://r',
      PAYGRAPH_MERCHANTS_DATABASE_URL: 'postgres://m:pw@db/paygraph',
    });
    expect(serviceEnv('gateway', env, 'postgres://ads:pw@db/paygraph')).toEqual({ PATH: '/usr/bin', PAYGRAPH_DB_POOL_MAX: '4', REDIS_URL: 'redis://r' });
    expect(isDatabaseVariable('PAYGRAPH_DB_POOL_MAX')).toBe(false);
  });
});
