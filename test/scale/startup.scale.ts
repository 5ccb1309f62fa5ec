/**
 * Scale-out start-up and routing rules, on PostgreSQL (`npm run test:scale`):
 * - several processes starting together on one empty database migrate and seed it once
 *   (runtime/database.ts prepareDb under a PostgreSQL advisory lock), each creating its roles and
 *   migrating as the schema owner;
 * - per-subgraph database URLs (PAYGRAPH_<NAME>_DATABASE_URL, _MIGRATE_DATABASE_URL) are that subgraph's only;
 * - a gateway given a URL list for a subgraph skips a process that refuses connections, and its
 *   /ready reports that process as degraded, not the subgraph as unreachable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../runtime/cluster.js';
import { serveService, type RunningService } from '../../runtime/service.js';
import { readiness } from '../../gateway/readiness.js';
import { loadConfig, parseUrlList, SUBGRAPH_NAMES } from '../../lib/config.js';
import { pgDatabaseOf, prepareDb } from '../../runtime/database.js';
import { buildFixture } from '../../seeds/fixture.js';
import { privateKeyPem } from '../../lib/transport/keys.js';
import { freshPostgresDatabase, startTestStack, TEST_JWT_SECRET, TEST_KEYS, type TestStack, postGraphQL } from '../helpers/stack.js';

const adminUrl = process.env.PAYGRAPH_TEST_DATABASE_URL!;

describe('migrations on a shared PostgreSQL database', () => {
  it('three processes of every subgraph starting at once on an empty database migrate and seed it once', async () => {
    const database = await freshPostgresDatabase(adminUrl);
    try {
      // Each prepareDb has its own knex pool, as separate processes would.
      const prepared = await Promise.all(
        SUBGRAPH_NAMES.flatMap((name) => [1, 2, 3].map(async () => ({ name, ...(await prepareDb(name, ':memory:', database.url, { poolMax: 3 })) }))),
      );
      try {
        for (const name of SUBGRAPH_NAMES) expect(prepared.filter((p) => p.name === name && p.seeded)).toHaveLength(1);
        const db = prepared.find((p) => p.name === 'payments')!.db;
        const users = prepared.find((p) => p.name === 'accounts')!.db;
        const merchants = prepared.find((p) => p.name === 'merchants')!.db;
        const fixture = buildFixture();
        expect(Number(((await merchants('merchants').count({ n: '*' }).first()) as { n: unknown }).n)).toBe(fixture.merchants.length);
        expect(Number(((await users('users').count({ n: '*' }).first()) as { n: unknown }).n)).toBe(fixture.users.length);
        const migrations = Number(((await db('knex_migrations').count({ n: '*' }).first()) as { n: unknown }).n);
        const again = await prepareDb('payments', ':memory:', database.url);
        expect(again.seeded).toBe(false);
        expect(Number(((await again.db('knex_migrations').count({ n: '*' }).first()) as { n: unknown }).n)).toBe(migrations);
        await again.db.destroy();
      } finally {
        await Promise.all(prepared.map((p) => p.db.destroy()));
      }
    } finally {
      await database.drop();
    }
  });
});

describe('configuration', () => {
  it('PAYGRAPH_<NAME>_DATABASE_URL and _MIGRATE_DATABASE_URL are that subgraph’s only; DATABASE_URL is the admin in development only', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://a/shared',
      PAYGRAPH_PAYMENTS_DATABASE_URL: 'postgres://svc@b/ledger',
      PAYGRAPH_PAYMENTS_MIGRATE_DATABASE_URL: 'postgres://own@b/ledger',
    });
    const none = { accounts: undefined, payments: undefined, merchants: undefined, alerts: undefined, ads: undefined };
    expect(c.subgraphDatabaseUrls).toEqual({ ...none, payments: 'postgres://svc@b/ledger' });
    expect(c.subgraphMigrateDatabaseUrls).toEqual({ ...none, payments: 'postgres://own@b/ledger' });
    expect(pgDatabaseOf(c, 'accounts')).toEqual({ url: 'postgres://a/shared', adminUrl: 'postgres://a/shared' });
    expect(pgDatabaseOf(c, 'payments')).toMatchObject({ serviceUrl: 'postgres://svc@b/ledger', migrateUrl: 'postgres://own@b/ledger' });
    const prod = loadConfig({
      NODE_ENV: 'production',
      PAYGRAPH_JWT_SECRET: 'j'.repeat(40),
      PAYGRAPH_GATEWAY_SECRET: 'g'.repeat(40),
      DATABASE_URL: 'postgres://a/shared',
    });
    expect(prod.databaseAdminUrl).toBeUndefined();
    const alertsOnly = loadConfig({ PAYGRAPH_ALERTS_DATABASE_URL: 'postgres://c/alerts' });
    expect(SUBGRAPH_NAMES.filter((n) => pgDatabaseOf(alertsOnly, n))).toEqual(['alerts']);
  });

  it('PAYGRAPH_<NAME>_URL takes a comma-separated list and refuses a bad one, naming the variable', () => {
    expect(parseUrlList(' http://a:1/graphql , http://b:2/graphql ')).toEqual(['http://a:1/graphql', 'http://b:2/graphql']);
    expect(() => loadConfig({ PAYGRAPH_PAYMENTS_URL: 'http://a:1/graphql,nope' })).toThrow(/PAYGRAPH_PAYMENTS_URL: not a URL: "nope"/);
    expect(() => loadConfig({ PAYGRAPH_PAYMENTS_URL: ' , ' })).toThrow(/PAYGRAPH_PAYMENTS_URL: empty URL list/);
    expect(() => loadConfig({ PAYGRAPH_DB_POOL_MAX: '1' })).toThrow(/PAYGRAPH_DB_POOL_MAX/);
  });
});

describe('a gateway over a list of subgraph processes', () => {
  let stack: TestStack;
  let gateway: RunningService;
  let dead: string;

  beforeAll(async () => {
    stack = await startTestStack();
    const [port] = await freePorts(1);
    dead = `http://127.0.0.1:${port}/graphql`;
    // The gateway's own private key only: it verifies no one, so it needs no public key.
    const env: NodeJS.ProcessEnv = {
      PORT: '0',
      PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET,
      PAYGRAPH_GATEWAY_PRIVATE_KEY: privateKeyPem(TEST_KEYS.gateway),
      LOG_LEVEL: 'error',
    };
    for (const name of SUBGRAPH_NAMES) env[`PAYGRAPH_${name.toUpperCase()}_URL`] = stack.subgraphs[name].url;
    // A payments "process" that is down, listed first, and the live one.
    env.PAYGRAPH_PAYMENTS_URL = `${dead},${stack.subgraphs.payments.url}`;
    gateway = await serveService('gateway', loadConfig(env), { port: 0 });
  });
  afterAll(async () => {
    await gateway?.stop();
    await stack?.stop();
  });

  it('skips the process that refuses connections: every request is answered', async () => {
    const token = await stack.token('alice');
    for (let i = 0; i < 6; i += 1) {
      const res = await postGraphQL<{ me: { accounts: { balance: { current: { amount: string } } }[] } }>(
        gateway.url,
        { query: '{ me { accounts { balance { current { amount } } } } }' },
        { authorization: `Bearer ${token}` },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data!.me.accounts).toHaveLength(2);
    }
  });

  it('is ready while one process per subgraph answers, listing the one that does not as degraded', async () => {
    const res = await fetch(gateway.url.replace(/\/graphql$/, '/ready'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', unreachable: [], degraded: [`payments ${dead}`] });
    const urls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, stack.subgraphs[n].url]));
    expect(await readiness({ ...urls, payments: dead } as never)).toEqual({ unreachable: ['payments'], degraded: [] });
  });
});
