/**
 * The scaled-out cluster, as `npm run start:cluster` runs it (runtime/cluster.ts): two gateways, two
 * payments and two alerts processes, one of each other subgraph, every one a real child process,
 * on free ports, sharing a fresh PostgreSQL database and the Redis of REDIS_URL.
 * Run by `npm run test:scale` (vitest.scale.config.ts), which requires both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import type { Knex } from 'knex';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { exited, isDatabaseVariable, startCluster, type Cluster, type ClusterProcess } from '../../runtime/cluster.js';
import { openDb } from '../../lib/db.js';
import { ACTIVE_MARK, BLOCKED_MARK, GUARD_MARK } from '../../lib/egress-guard.mjs';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import { redisUrlVariable, SERVICE_NAMES } from '../../lib/config.js';
import { privateKeyPem, privateKeyVariable } from '../../lib/transport/keys.js';
import { freshPostgresDatabase, postGraphQL, TEST_JWT_SECRET, TEST_KEYS, userId } from '../helpers/stack.js';
import {
  afterPlan,
  balances,
  expectConcurrentDrainNeverOverdraws,
  HANDLES,
  newKey,
  pay,
  send,
  transferInput,
  transferPlan,
  usersTotal as total,
} from '../helpers/money.js';
import { waitFor as waitForCondition } from '../helpers/wait.js';
import { activeConsent, ALL_SCOPES, disclosureVersion, expectConsentRequired, grant, regrantRevokedSeedConsent, revoke, type Gql } from '../helpers/consent.js';

/** PAYGRAPH_<NAME>_REDIS_URL from PAYGRAPH_TEST_<NAME>_REDIS_URL, for the services that have one. */
function testRedisUrls(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of SERVICE_NAMES) {
    const url = process.env[`PAYGRAPH_TEST_${s.toUpperCase()}_REDIS_URL`];
    if (url) out[redisUrlVariable(s)] = url;
  }
  return out;
}

let cluster: Cluster;
let database: { url: string; name: string; drop(): Promise<void> };
let dataDir: string | undefined;
let payments: Knex;
let alerts: Knex;
const tokens: Record<string, string> = {};
/** The egress guard's lines of every process (`<label> <line>`); a process's `lines` keep only the last ones. */
const guardLines: string[] = [];

beforeAll(async () => {
  database = await freshPostgresDatabase(process.env.PAYGRAPH_TEST_DATABASE_URL!);
  // The install's data directory: the migrate step keeps the roles' passwords there.
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-cluster-'));
  try {
    cluster = await startCluster({
      databaseUrl: database.url,
      redisUrl: process.env.REDIS_URL!,
      basePort: 0,
      onLine: (label, line) => {
        if (line.startsWith(GUARD_MARK)) guardLines.push(`${label} ${line}`);
      },
      // info: every subgraph logs each request it serves, which shows how requests were spread.
      // PAYGRAPH_EGRESS_GUARD=1: every process preloads the egress guard and says so; afterAll checks it refused nothing.
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        PAYGRAPH_DATA_DIR: dataDir,
        PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET,
        PAYGRAPH_EGRESS_GUARD: '1',
        // Every service's private key, as in production: each process is handed only its own.
        ...Object.fromEntries(SERVICE_NAMES.map((s) => [privateKeyVariable(s), privateKeyPem(TEST_KEYS[s])])),
        // Each service's own Redis ACL user when CI made them (.ci/run: PAYGRAPH_TEST_<NAME>_REDIS_URL), as in production.
        ...testRedisUrls(),
      },
      // (No key is written there: every key comes from the environment.)
      dataDir,
    });
  } catch (err) {
    await database.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  payments = openDb({ postgresUrl: database.url, schema: 'payments', poolMax: 2 });
  alerts = openDb({ postgresUrl: database.url, schema: 'alerts', poolMax: 2 });
  for (const h of HANDLES) tokens[h] = await signToken(TEST_JWT_SECRET, userId(h), 'payments');
  // Every seeded account may move money in the money tests (consent: its own describe below).
  const gql = (q: string, v?: Record<string, unknown>, t?: string | null) =>
    postGraphQL(cluster.gateways[0]!, { query: q, variables: v }, t ? { authorization: `Bearer ${t}` } : {});
  await regrantRevokedSeedConsent(gql as Gql, async (h) => tokens[h]!);
});

afterAll(async () => {
  await payments?.destroy();
  await alerts?.destroy();
  await cluster?.stop();
  // Every process exited: nothing is left behind.
  for (const p of cluster?.processes ?? []) expect(p.child.exitCode !== null || p.child.signalCode !== null, p.label).toBe(true);
  await database?.drop();
  // No egress: every process ran under the egress guard, which refused nothing.
  expect(guardLines.filter((l) => l.includes(BLOCKED_MARK))).toEqual([]);
  const guarded = new Set(guardLines.filter((l) => l.includes(ACTIVE_MARK)).map((l) => l.split(' ')[0]));
  expect([...guarded]).toEqual(expect.arrayContaining((cluster?.processes ?? []).map((p) => p.label)));
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function proc(label: string): ClusterProcess {
  const p = cluster.processes.find((x) => x.label === label);
  if (!p) throw new Error(`no ${label}`);
  return p;
}

/** GraphQL requests a subgraph process has served so far (its request log lines). */
function graphqlRequests(label: string): number {
  return proc(label).lines.filter((l) => l.includes('"path":"/graphql"')).length;
}

/** Clusters of child processes on a shared machine are slow: a minute, checking every 50 ms. */
const waitFor = (cond: () => boolean | Promise<boolean>, label: string) => waitForCondition(cond, label, 60_000, 50);

describe('cluster: two gateways, two payments processes, one PostgreSQL', () => {
  it('serves the same data through both gateways and reports ready', async () => {
    expect(cluster.gateways).toHaveLength(2);
    expect(cluster.processes.map((p) => p.label).sort()).toEqual(
      ['accounts#1', 'ads#1', 'alerts#1', 'alerts#2', 'gateway#1', 'gateway#2', 'merchants#1', 'payments#1', 'payments#2'].sort(),
    );
    const query = '{ me { handle accounts { id balance { current { amount currency } } } } }';
    const [a, b] = await Promise.all(cluster.gateways.map((g) => postGraphQL(g, { query }, { authorization: `Bearer ${tokens.alice}` })));
    expect(a!.errors).toBeUndefined();
    expect(b!.data).toEqual(a!.data);
    for (const g of cluster.gateways) {
      const ready = await fetch(g.replace(/\/graphql$/, '/ready'));
      expect(ready.status).toBe(200);
    }
  });

  it('concurrent transfers through both gateways, spread over both payments processes, conserve money', async () => {
    const before = await balances(payments);
    const served = [graphqlRequests('payments#1'), graphqlRequests('payments#2')];
    // Deterministic pseudo-random plan: 80 transfers between the four users, 0.01 .. 60.00 each,
    // alternating between the two gateways, all at once.
    const plan = transferPlan(80, 4242);
    const results = await Promise.all(plan.map((p, i) => send(cluster.gateways[i % 2]!, tokens[p.from]!, transferInput(p))));
    expect(results.filter((r) => r.userErrors.length > 0)).toEqual([]);
    const after = await balances(payments);
    expect(total(after)).toBe(total(before));
    expect(after).toEqual(afterPlan(before, plan));
    expect(new Set(results.map((r) => r.transfer!.id)).size).toBe(plan.length);
    expect((await verifyLedger(payments)).problems).toEqual([]);
    // Both payments processes did part of the work (the gateways go round-robin over them).
    expect(graphqlRequests('payments#1')).toBeGreaterThan(served[0]!);
    expect(graphqlRequests('payments#2')).toBeGreaterThan(served[1]!);
  });

  it('each subgraph process has only its own service role’s database URL, the gateways none, and connects as that role', async () => {
    // What each process was started with (Linux: its /proc/<pid>/environ).
    for (const p of cluster.processes) {
      const file = `/proc/${p.child.pid}/environ`;
      if (!fs.existsSync(file)) continue;
      const vars = fs
        .readFileSync(file, 'utf8')
        .split('\0')
        .filter((kv) => kv.length > 0)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const)
        .filter(([k]) => isDatabaseVariable(k));
      if (p.service === 'gateway') expect(vars, p.label).toEqual([]);
      else {
        expect(
          vars.map(([k]) => k),
          p.label,
        ).toEqual([`PAYGRAPH_${p.service.toUpperCase()}_DATABASE_URL`]);
        expect(decodeURIComponent(new URL(vars[0]![1]).username), p.label).toBe(`${database.name}_${p.service}`);
      }
    }
    // Who is connected to the database: the services' own roles (and this test's admin), never an owner.
    const me = ((await payments.raw('SELECT current_user AS me')).rows[0] as { me: string }).me;
    const users = ((await payments.raw('SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()')).rows as { usename: string }[])
      .map((r) => r.usename)
      .filter((u) => u !== me);
    const serviceRoles = ['accounts', 'payments', 'merchants', 'alerts', 'ads'].map((n) => `${database.name}_${n}`);
    expect(users).toContain(`${database.name}_payments`);
    expect(users.filter((u) => !serviceRoles.includes(u))).toEqual([]);
  });

  it('an account drained concurrently through both gateways never goes below zero', async () => {
    await expectConcurrentDrainNeverOverdraws(payments, tokens.carol!, (i) => cluster.gateways[i % 2]!);
    expect((await verifyLedger(payments)).problems).toEqual([]);
  });
});

interface Raised {
  id: string;
  purchase: { id: string };
}

/** A graphql-ws subscriber on one gateway, collecting the alerts it receives. */
function subscriber(gateway: string, token: string): { client: Client; alerts: Raised[]; errors: unknown[]; connected: Promise<void> } {
  const client = createClient({
    url: gateway.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  const out = { client, alerts: [] as Raised[], errors: [] as unknown[], connected: new Promise<void>((resolve) => client.on('connected', () => resolve())) };
  client.subscribe(
    { query: 'subscription ChargeAlerts { chargeAlertRaised { id purchase { id } } }' },
    {
      next: (v) => {
        if (v.errors) out.errors.push(v.errors);
        else out.alerts.push((v.data as { chargeAlertRaised: Raised }).chargeAlertRaised);
      },
      error: (e) => out.errors.push(e),
      complete: () => out.errors.push('completed'),
    },
  );
  return out;
}

/** The alerts process holding the consumer lease (subgraphs/alerts/lease.ts: holder host:pid:random). */
async function leader(): Promise<string | null> {
  const row = (await alerts('consumer_leases').select('holder', 'expires_at').first()) as { holder: string; expires_at: unknown } | undefined;
  if (!row || !row.holder || Number(row.expires_at) < Date.now()) return null;
  const pid = Number(row.holder.split(':')[1]);
  return (
    cluster.processes.find((p) => p.service === 'alerts' && p.child.pid === pid && p.child.exitCode === null && p.child.signalCode === null)?.label ?? null
  );
}

describe('cluster: consent across both gateways and both payments processes', () => {
  const via = (g: string): Gql =>
    ((q: string, v?: Record<string, unknown>, t?: string | null) =>
      postGraphQL(g, { query: q, variables: v }, t ? { authorization: `Bearer ${t}` } : {})) as Gql;
  const BAL = 'query Bal { me { accounts { id mask balance { current { amount } } transactions(first: 1) { totalCount } } } }';
  type BalOut = { me: { accounts: { id: string; mask: string | null; balance: unknown; transactions: unknown }[] } };

  it('grant -> read -> revoke on one gateway: the next read is CONSENT_REQUIRED on both, every time; the other bank still answers; no money moves', async () => {
    const [g1, g2] = cluster.gateways as [string, string];
    const alice = tokens.alice!;
    const version = await disclosureVersion(via(g1), alice, 'ins_chase');
    const granted = await grant(via(g1), alice, { institutionId: 'ins_chase', scopes: [...ALL_SCOPES], durationDays: 30, disclosureVersion: version });
    expect(granted.userErrors).toEqual([]);
    for (const g of [g1, g2]) {
      const r = await via(g)<BalOut>(BAL, {}, alice);
      expect(r.errors, g).toBeUndefined();
    }
    // Revoke every Chase consent of hers (the seeded one too), on the other gateway.
    for (;;) {
      const c = (
        await via(g2)<{ me: { consents: { id: string; institution: { id: string }; status: string }[] } }>(
          '{ me { consents { id status institution { id } } } }',
          {},
          alice,
        )
      ).data!.me.consents.find((x) => x.institution.id === 'ins_chase' && x.status === 'ACTIVE');
      if (!c) break;
      expect((await revoke(via(g2), alice, c.id)).userErrors).toEqual([]);
    }
    // The next operations, on either gateway, over both payments processes (round-robin): refused every time.
    const served = [graphqlRequests('payments#1'), graphqlRequests('payments#2')];
    for (let i = 0; i < 6; i++) {
      const r = await via(cluster.gateways[i % 2]!)<BalOut>(BAL, {}, alice);
      const idx = r.data!.me.accounts.findIndex((a) => a.id === 'acc_alice_checking');
      expect(r.data!.me.accounts[idx]).toMatchObject({ mask: null, balance: null, transactions: null });
      expectConsentRequired(r, `me.accounts.${idx}.balance`, 'ins_chase', 'BALANCES');
      expectConsentRequired(r, `me.accounts.${idx}.mask`, 'ins_chase', 'ACCOUNT_DETAILS');
      const card = r.data!.me.accounts.find((a) => a.id === 'acc_alice_card')!;
      expect(card.mask).toBe('1007');
      expect(card.balance).not.toBeNull();
    }
    expect(graphqlRequests('payments#1')).toBeGreaterThan(served[0]!);
    expect(graphqlRequests('payments#2')).toBeGreaterThan(served[1]!);
    const before = await balances(payments);
    for (const g of [g1, g2]) {
      const out = await send(g, alice, {
        fromAccountId: 'acc_alice_checking',
        toHandle: 'bob',
        amount: { amount: '1.00', currency: 'USD' },
        idempotencyKey: newKey(),
      });
      expect(out.userErrors.map((e) => e.code)).toEqual(['CONSENT_REQUIRED']);
    }
    expect(await balances(payments)).toEqual(before);
    // Granted again: served again, on both.
    expect(
      (await grant(via(g2), alice, { institutionId: 'ins_chase', scopes: [...ALL_SCOPES], durationDays: 365, disclosureVersion: version })).userErrors,
    ).toEqual([]);
    for (const g of [g1, g2]) expect((await via(g)<BalOut>(BAL, {}, alice)).errors).toBeUndefined();
    expect((await activeConsent(via(g1), alice, 'ins_chase')).status).toBe('ACTIVE');
  });
});

describe('cluster: charge alerts across two alerts processes and two gateways (Redis fan-out)', () => {
  it('an alert raised by either alerts worker reaches a subscriber on either gateway, once', async () => {
    // gateway#k's subscription bridge is connected to alerts#k (runtime/cluster.ts), and only the
    // lease holder raises alerts: each alert reaches the other gateway's subscriber only through
    // Redis.
    const subs = cluster.gateways.map((g) => subscriber(g, tokens.alice!));
    try {
      await Promise.all(subs.map((s) => s.connected));
      await waitFor(async () => (await leader()) !== null, 'an alerts worker to hold the consumer lease');
      const first = (await leader())!;
      const other = first === 'alerts#1' ? 'alerts#2' : 'alerts#1';
      const suspicious = (gateway: string) =>
        pay(gateway, tokens.alice!, {
          accountId: 'acc_alice_checking',
          merchantId: 'mer_air_france',
          amount: { amount: '1200.00', currency: 'USD' },
          idempotencyKey: newKey(),
          cardPresent: false,
        });
      const expectAll = async (purchaseIds: string[], label: string) => {
        await waitFor(() => subs.every((s) => s.alerts.length >= purchaseIds.length || s.errors.length > 0), label);
        for (const s of subs) {
          expect(s.errors).toEqual([]);
          expect(s.alerts.map((a) => a.purchase.id)).toEqual(purchaseIds);
        }
      };

      // 1. Raised by the first lease holder.
      const p1 = await suspicious(cluster.gateways[0]!);
      expect(p1.userErrors).toEqual([]);
      await expectAll([p1.purchase!.id], `the first alert (raised by ${first}) on both gateways`);

      // 2. The holder stops: the other worker takes the lease over and raises the next alert; the
      //    subscriber whose bridge was on the stopped process gets it once that process is back
      //    (the bridge resumes from its cursor), the other one live.
      await cluster.stopProcess(first);
      await waitFor(async () => (await leader()) === other, `${other} to take the consumer lease over`);
      const p2 = await suspicious(cluster.gateways[1]!);
      expect(p2.userErrors).toEqual([]);
      await cluster.startProcess(first);
      await expectAll([p1.purchase!.id, p2.purchase!.id], `the second alert (raised by ${other}) on both gateways`);

      // 3. One more, after everything settled: it arrives next everywhere, so nothing was
      //    delivered twice.
      const p3 = await suspicious(cluster.gateways[0]!);
      expect(p3.userErrors).toEqual([]);
      const ids = [p1, p2, p3].map((p) => p.purchase!.id);
      await expectAll(ids, 'the third alert on both gateways');

      // Exactly the alerts the database holds for these purchases, one each.
      const rows = (await alerts('charge_alerts').whereIn('purchase_id', ids).select('id', 'purchase_id')) as { id: string; purchase_id: string }[];
      expect(rows).toHaveLength(3);
      for (const s of subs) expect(new Set(s.alerts.map((a) => a.id))).toEqual(new Set(rows.map((r) => r.id)));
    } finally {
      await Promise.all(subs.map((s) => s.client.dispose()));
    }
  });
});

interface Resumed {
  id: string;
  cursor: string;
  purchase: { id: string };
}

/**
 * A client as an app writes one: subscribed on one gateway, and when its connection drops,
 * subscribed again on the next gateway with `after` set to the cursor of the last alert it received.
 */
function resumingSubscriber(gateways: string[], token: string) {
  const out = { alerts: [] as Resumed[], errors: [] as unknown[], reconnects: 0, clients: [] as Client[], connected: null as Promise<void> | null };
  const connect = (k: number) => {
    const client = createClient({
      url: gateways[k % gateways.length]!.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: { authorization: `Bearer ${token}` },
      onNonLazyError: () => {},
    });
    out.clients.push(client);
    out.connected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
    const after = out.alerts.at(-1)?.cursor ?? null;
    client.subscribe(
      { query: 'subscription Resume($after: String) { chargeAlertRaised(after: $after) { id cursor purchase { id } } }', variables: { after } },
      {
        next: (v) => (v.errors ? out.errors.push(v.errors) : out.alerts.push((v.data as { chargeAlertRaised: Resumed }).chargeAlertRaised)),
        error: (e) => {
          // A dropped connection (a close event): resume on the next gateway. GraphQL errors: give up.
          if (Array.isArray(e)) return void out.errors.push(e);
          out.reconnects += 1;
          void client.dispose();
          connect(k + 1);
        },
        complete: () => out.errors.push('completed'),
      },
    );
  };
  connect(1); // on the second gateway
  return out;
}

describe('cluster: a gateway killed with SIGKILL during a burst of flagged purchases', () => {
  it('the client, reconnecting to the other gateway with its last cursor, receives every alert exactly once, in order', async () => {
    const carol = tokens.carol!;
    const charge = () =>
      pay(cluster.gateways[0]!, carol, {
        accountId: 'acc_carol_card',
        merchantId: 'mer_air_france',
        amount: { amount: '1.00', currency: 'USD' },
        idempotencyKey: newKey(),
        cardPresent: false,
      });
    // From the 5th charge within 10 minutes on, every such charge is flagged (VELOCITY + FOREIGN_MERCHANT).
    for (let i = 0; i < 4; i++) expect((await charge()).userErrors).toEqual([]);
    const sub = resumingSubscriber(cluster.gateways, carol);
    try {
      await sub.connected;
      const burst: string[] = [];
      let killed = false;
      for (let i = 0; i < 24; i++) {
        const p = await charge();
        expect(p.userErrors).toEqual([]);
        burst.push(p.purchase!.id);
        if (!killed && sub.alerts.length >= 5) {
          // kill -9 the gateway the client is on, in the middle of the burst.
          proc('gateway#2').child.kill('SIGKILL');
          killed = true;
        }
        if (!killed && i >= 5) await waitFor(() => sub.alerts.length >= 5, 'the first 5 alerts on gateway#2');
      }
      expect(killed).toBe(true);
      const rows = (await readUntilAll(burst)).map((r) => r.id);
      await waitFor(() => sub.alerts.length >= rows.length || sub.errors.length > 0, `all ${rows.length} alerts of the burst at the client`);
      expect(sub.errors).toEqual([]);
      expect(sub.reconnects).toBe(1);
      // Every alert of the burst, in commit order, each exactly once.
      expect(sub.alerts.map((a) => a.id)).toEqual(rows);
      // And nothing more arrives later: the next alert is the next one.
      const next = await charge();
      await waitFor(() => sub.alerts.length >= rows.length + 1 || sub.errors.length > 0, 'the alert after the burst');
      expect(sub.alerts.map((a) => a.purchase.id).slice(rows.length)).toEqual([next.purchase!.id]);
    } finally {
      await Promise.all(sub.clients.map((c) => c.dispose()));
      if (exited(proc('gateway#2').child)) await cluster.startProcess('gateway#2');
    }
  });
});

/** The alerts raised by these purchases, in commit order, once the consumer applied them all. */
async function readUntilAll(purchaseIds: string[]): Promise<{ id: string; purchase_id: string }[]> {
  let rows: { id: string; purchase_id: string; event_id: unknown }[] = [];
  await waitFor(async () => {
    rows = await alerts('charge_alerts').whereIn('purchase_id', purchaseIds).select('id', 'purchase_id', 'event_id').orderBy('event_id', 'asc');
    return rows.length === purchaseIds.length;
  }, 'an alert for every purchase of the burst');
  return rows;
}
