/**
 * Fence layers 2 and 5 and the introspection filter, through the gateway: the attack suite with an
 * advertising token (and without a token), the same operations with a payments token, legitimate
 * advertising use, and the data-access log.
 */
import { buildFixture } from '../../seeds/fixture.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { op } from '../helpers/contract.js';
import { LogCapture } from '../helpers/logs.js';
import { expectData, expectGraphQLError, expectNoLeak, expectNothingMoved, expectUnseen } from '../helpers/matchers.js';
import { postGraphQL, startTestStack, userId, type GqlResponse, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let ads: string;
let pay: string;
/** Every leaf value a payments caller reads from alice's protected data: none may ever reach an ad caller. */
let secrets: string[] = [];
/** The same without transaction descriptions, which name merchants (public directory data that Offers may show). */
let bankSecrets: string[] = [];

type Raw = GqlResponse<unknown>;

/** POSTs to the gateway with an operation name (stack.gql sends none), keeping the body and headers for leak scans. */
function raw(query: string, variables: Record<string, unknown> | undefined, token: string | null, operationName?: string): Promise<Raw> {
  return postGraphQL<unknown>(stack.url, { query, variables, operationName }, token ? { authorization: `Bearer ${token}` } : {});
}

function leaves(value: unknown, out: string[] = []): string[] {
  if (value === null || value === undefined) return out;
  if (typeof value === 'object') for (const v of Object.values(value as Record<string, unknown>)) leaves(v, out);
  else out.push(String(value));
  return out;
}

/**
 * Refused to a non-payments caller as if the payment-only API did not exist (a validation error
 * against the contract schema, naming no payment-only type), with no protected value anywhere,
 * and audited all the same: the record under the error's request id is REFUSED and names
 * `expected` (the protected coordinates the document selected, judged on the full API).
 */
async function expectRefusedUnseen(r: Raw, expected: string[]): Promise<void> {
  const [first] = expectUnseen(r);
  expectNoLeak(r, secrets);
  const row = await stack.dbs.accounts('data_access_log').where({ request_id: first!.extensions?.requestId }).first();
  expect(row, `no audit record for request ${String(first!.extensions?.requestId)}`).toBeDefined();
  expect(row.decision).toBe('REFUSED');
  expect(JSON.parse(row.coordinates)).toEqual(expect.arrayContaining(expected));
}

const ACCOUNT = 'acc_alice_checking';

/** Every route in layer 2. Each is refused for advertising and anonymous callers, and served to payments callers. */
const ATTACKS: {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  expect: string[];
  paymentsData?: (d: unknown) => void;
}[] = [
  { name: 'plain selection', query: '{ me { accounts { id mask } } }', expect: ['User.accounts', 'Account.mask'] },
  {
    name: 'aliases',
    query: '{ me { wallet: accounts { id last4: mask money: balance { now: current { amount } } } } }',
    expect: ['User.accounts', 'Account.mask', 'Account.balance', 'Balance.current'],
  },
  {
    name: 'named fragments (nested)',
    query: 'query Q { me { ...U } } fragment U on User { accounts { ...A } } fragment A on Account { mask balance { available { amount currency } } }',
    expect: ['User.accounts', 'Account.mask', 'Account.balance', 'Balance.available'],
  },
  { name: 'inline fragments', query: '{ me { ... on User { accounts { ... on Account { mask } } } } }', expect: ['User.accounts', 'Account.mask'] },
  { name: 'inline fragment without type condition', query: '{ account(id: "acc_alice_checking") { ... { mask } } }', expect: ['Account.mask'] },
  {
    name: 'root field by id, protected type below',
    query: '{ account(id: "acc_alice_checking") { id transactions(first: 3) { edges { node { id description amount { amount } } } } } }',
    expect: ['Account.transactions', 'TransactionConnection.edges', 'TransactionEdge.node', 'Transaction.description'],
  },
  {
    name: '@include(if: $var) false still counts as selected',
    query: 'query Q($yes: Boolean!) { me { id accounts @include(if: $yes) { mask } } }',
    variables: { yes: false },
    expect: ['User.accounts', 'Account.mask'],
  },
  {
    name: '@skip(if: $var) true still counts as selected',
    query: 'query Q($no: Boolean!) { me { id accounts @skip(if: $no) { mask } } }',
    variables: { no: true },
    expect: ['User.accounts', 'Account.mask'],
  },
  {
    name: '@skip on a fragment spread',
    query: 'query Q($s: Boolean = true) { account(id: "acc_alice_checking") { id ...M @skip(if: $s) } } fragment M on Account { mask }',
    expect: ['Account.mask'],
  },
  {
    name: 'several operations: executing the harmless one',
    query: 'query Harmless { me { id handle } } query Harmful { me { accounts { mask } } }',
    operationName: 'Harmless',
    expect: ['User.accounts', 'Account.mask'],
  },
  { name: 'payment-only root field, __typename only', query: '{ chargeAlerts { __typename } }', expect: ['Query.chargeAlerts'] },
  { name: 'data-access log', query: '{ me { dataAccessLog(first: 5) { totalCount } } }', expect: ['User.dataAccessLog'] },
];

/** The services' error logs: the fail-closed test reads the fence's own report of the failed write. */
const logs = new LogCapture();

beforeAll(async () => {
  stack = await startTestStack({ logDestination: logs, logLevel: 'error' });
  ads = await stack.token('alice', 'advertising');
  pay = await stack.token('alice', 'payments');
  const r = await raw(
    '{ me { accounts { id mask balance { available { amount } current { amount } } transactions(first: 20) { edges { cursor node { id description amount { amount } } } } } } }',
    undefined,
    pay,
  );
  const d = expectData(r) as { me: { accounts: { id: string }[] } };
  // Account ids are not protected (they are keys); everything else below `accounts` is.
  secrets = [...new Set(leaves(d.me.accounts.map(({ id: _id, ...rest }) => rest)))].filter((s) => s.length >= 4);
  expect(secrets.length).toBeGreaterThan(20);
  const descriptions = new Set(leaves(JSON.parse(JSON.stringify(d), (k, v: unknown) => (k === 'description' || typeof v === 'object' ? v : undefined))));
  bankSecrets = secrets.filter((s) => !descriptions.has(s));
});

afterAll(async () => {
  await stack?.stop();
});

describe('layer 2: the gateway refuses protected selections to non-payments callers', () => {
  for (const a of ATTACKS) {
    it(`advertising: ${a.name}`, async () => {
      const r = await raw(a.query, a.variables, ads, a.operationName);
      await expectRefusedUnseen(r, a.expect);
    });
    it(`anonymous: ${a.name}`, async () => {
      const r = await raw(a.query, a.variables, null, a.operationName);
      await expectRefusedUnseen(r, a.expect);
    });
    it(`payments: ${a.name} is served`, async () => {
      expectData(await raw(a.query, a.variables, pay, a.operationName));
    });
  }

  it('mutations are refused to advertising callers, and nothing moves', async () => {
    const r = await expectNothingMoved(stack.dbs.payments, () =>
      raw(
        'mutation M($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }',
        { input: { fromAccountId: ACCOUNT, toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: 'fence-attack-1' } },
        ads,
      ),
    );
    await expectRefusedUnseen(r, ['Mutation.sendTransfer', 'SendTransferPayload.userErrors']);
  });

  it('a mutation with a payments token is served', async () => {
    const r = await raw('mutation { resolveChargeAlert(id: "no-such-alert", fraudulent: false) { userErrors { code } } }', undefined, pay);
    expect(expectData(r)).toEqual({ resolveChargeAlert: { userErrors: [{ code: 'NOT_FOUND' }] } });
  });

  it('a subscription document with protected fields is refused over HTTP before anything runs', async () => {
    const r = await raw('subscription { chargeAlertRaised { id riskScore } }', undefined, ads);
    await expectRefusedUnseen(r, ['Subscription.chargeAlertRaised', 'ChargeAlert.riskScore']);
  });

  it('`_entities` and `_service` are not part of the API: validation fails, no data', async () => {
    for (const q of [`{ _entities(representations: [{ __typename: "Account", id: "${ACCOUNT}" }]) { ... on Account { mask } } }`, '{ _service { sdl } }']) {
      for (const token of [ads, pay]) {
        const r = await raw(q, undefined, token);
        expectGraphQLError(r, 'GRAPHQL_VALIDATION_FAILED', { noData: true });
        expectNoLeak(r, secrets);
      }
    }
  });

  it('validation errors do not suggest protected field names', async () => {
    const r = await raw('{ me { acounts { id } } account(id: "x") { mas } }', undefined, ads);
    expect(r.data ?? null).toBeNull();
    expect(r.text).not.toMatch(/did you mean/i);
    expect(r.text).not.toContain('"accounts"');
    expect(r.text).not.toContain('mask');
  });

  it('legitimate advertising use keeps working: Offers with an advertising token', async () => {
    const r = await raw(op('Offers'), undefined, ads);
    const me = (expectData(r) as { me: { id: string; sponsoredOffers: { id: string; merchant: { name: string } }[] } }).me;
    expect(me.id).toBe(userId('alice'));
    expect(me.sponsoredOffers.length).toBeGreaterThan(0);
    expect(me.sponsoredOffers[0]!.merchant.name).toBeTruthy();
    expectNoLeak(r, bankSecrets);
  });

  it('public data keeps working without a token', async () => {
    const r = await raw(op('Merchants'), { first: 3 }, null);
    expect((expectData(r) as { merchants: unknown[] }).merchants).toHaveLength(3);
  });
});

describe('introspection: non-payments callers discover a schema without payment-only data', () => {
  const FULL = `{ __schema { queryType { name } mutationType { name } subscriptionType { name }
    types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }`;

  it('advertising and anonymous callers see no protected field or type', async () => {
    for (const token of [ads, null]) {
      const r = await raw(FULL, undefined, token);
      const types = (expectData(r) as { __schema: { types: { name: string; fields: { name: string }[] | null }[] } }).__schema.types;
      const names = types.map((t) => t.name);
      // A linked account is bank data as a whole: the type itself is not in their schema.
      for (const t of ['Account', 'Transaction', 'TransactionConnection', 'Balance', 'ChargeAlert', 'Transfer', 'Purchase', 'DataAccessRecord'])
        expect(names).not.toContain(t);
      const user = types.find((t) => t.name === 'User')!;
      expect(user.fields!.map((f) => f.name)).toEqual(expect.arrayContaining(['id', 'handle', 'sponsoredOffers']));
      expect(user.fields!.map((f) => f.name)).not.toContain('accounts');
      expect(user.fields!.map((f) => f.name)).not.toContain('dataAccessLog');
      expect(r.text).not.toMatch(/"mask"|"balance"|"chargeAlerts"|"dataAccessLog"/);
    }
  });

  it('__type on a protected type is null; on a mixed type the protected fields are gone', async () => {
    const r = await raw(
      '{ t: __type(name: "Transaction") { name } a: __type(name: "Account") { name } u: __type(name: "User") { fields { name } } }',
      undefined,
      ads,
    );
    const d = expectData(r) as { t: null; a: null; u: { fields: { name: string }[] } };
    expect(d.t).toBeNull();
    expect(d.a).toBeNull();
    expect(d.u.fields.map((f) => f.name)).toEqual(expect.arrayContaining(['id', 'handle', 'sponsoredOffers']));
    expect(d.u.fields.map((f) => f.name)).not.toContain('accounts');
  });

  it('introspection mixed with data fields is refused to non-payments callers', async () => {
    const r = await raw('{ me { id } __type(name: "Account") { fields { name } } }', undefined, ads);
    expect(r.data ?? null).toBeNull();
    expect(r.text).not.toContain('mask');
  });

  it('payments callers see everything', async () => {
    const r = await raw('{ t: __type(name: "Transaction") { name } a: __type(name: "Account") { fields { name } } }', undefined, pay);
    const d = expectData(r) as { t: { name: string }; a: { fields: { name: string }[] } };
    expect(d.t.name).toBe('Transaction');
    expect(d.a.fields.map((f) => f.name)).toEqual(expect.arrayContaining(['mask', 'balance', 'transactions']));
  });
});

describe('layer 5: the data-access log', () => {
  interface LogNode {
    id: string;
    at: string;
    purpose: string | null;
    client: string | null;
    operationName: string | null;
    operationHash: string;
    coordinates: string[];
    decision: string;
    layer: string;
  }
  const LOG = `query Log($first: Int, $after: String) { me { dataAccessLog(first: $first, after: $after) {
    totalCount edges { cursor node { id at purpose client operationName operationHash coordinates decision layer } } pageInfo { hasNextPage endCursor } } } }`;

  async function readLog(token: string, first = 100, after?: string) {
    const r = await stack.gql<{
      me: { dataAccessLog: { totalCount: number; edges: { cursor: string; node: LogNode }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
    }>(LOG, { first, after }, token);
    return expectData(r).me.dataAccessLog;
  }

  it('records allowed and refused accesses, readable by the user, newest first', async () => {
    const bobAds = await stack.token('bob', 'advertising');
    const bobPay = await stack.token('bob', 'payments');
    // The records are stamped by the gateway, in this process: between these two readings of the clock.
    const startedAt = Date.now();
    const refused = await stack.gql('query SneakyAd { me { accounts { mask } } }', undefined, bobAds, { 'apollographql-client-name': 'ad-sdk' });
    expectUnseen(refused);
    const allowed = await stack.gql('query MyCards { me { accounts { mask } } }', undefined, bobPay, { 'apollographql-client-name': 'wallet-ios' });
    expectData(allowed);
    const harmless = await stack.gql(op('Offers'), undefined, bobAds);
    expectData(harmless);
    const finishedAt = Date.now();

    const log = await readLog(bobPay);
    const nodes = log.edges.map((e) => e.node);
    // Reading the log is itself an access to payment-only data, so it is logged first.
    expect(nodes[0]!.coordinates).toContain('User.dataAccessLog');
    expect(nodes[0]!.operationName).toBe('Log');
    const [mine, ad] = [nodes[1]!, nodes[2]!];
    expect(mine).toMatchObject({
      purpose: 'payments',
      client: 'wallet-ios',
      operationName: 'MyCards',
      decision: 'ALLOWED',
      layer: 'gateway',
      coordinates: ['Account.mask', 'User.accounts'],
    });
    expect(ad).toMatchObject({
      purpose: 'advertising',
      client: 'ad-sdk',
      operationName: 'SneakyAd',
      decision: 'REFUSED',
      coordinates: ['Account.mask', 'User.accounts'],
    });
    expect(ad.operationHash).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(ad.at)).toBeGreaterThanOrEqual(startedAt);
    expect(Date.parse(ad.at)).toBeLessThanOrEqual(finishedAt);
    // Offers touched no payment-only data: not logged.
    expect(nodes.filter((n) => n.operationName === 'Offers')).toHaveLength(0);
    // Before them: the records of bob's seeded consent grants (seeds/load.ts), one per institution.
    const seeded = buildFixture().consents.filter((c) => c.userId === 'usr_bob');
    expect(log.totalCount).toBe(3 + seeded.length + seeded.filter((c) => c.revokedAt).length);
    expect(nodes.slice(3).every((n) => n.layer === 'consent-grant')).toBe(true);
  });

  it('pages with first/after', async () => {
    const page1 = await readLog(pay, 2);
    expect(page1.edges).toHaveLength(2);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await readLog(pay, 2, page1.pageInfo.endCursor!);
    expect(Number(page2.edges[0]!.node.id)).toBeLessThan(Number(page1.edges[1]!.node.id));
  });

  it('another user sees only their own log; an advertising caller cannot read it', async () => {
    const carol = await stack.token('carol', 'payments');
    const log = await readLog(carol);
    // Hers: her own reads, and her seeded consent grants (seeds/load.ts).
    expect(log.edges.every((e) => e.node.operationName === 'Log' || e.node.layer === 'consent-grant')).toBe(true);
    const r = await raw(LOG, { first: 5 }, ads);
    await expectRefusedUnseen(r, ['User.dataAccessLog']);
  });

  it('anonymous refused attempts are recorded without a user', async () => {
    await raw('query AnonProbe { me { accounts { mask } } }', undefined, null);
    const rows = await stack.dbs.accounts('data_access_log').where({ operation_name: 'AnonProbe' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ user_id: null, purpose: null, decision: 'REFUSED' });
  });

  it('the log is append-only: UPDATE, DELETE (and TRUNCATE on PostgreSQL) fail', async () => {
    const db = stack.dbs.accounts;
    const before = await db('data_access_log').count({ n: '*' }).first();
    // PostgreSQL: the accounts service's role has no right to (lib/db-roles.ts), and the triggers
    // refuse even the server's admin. SQLite: the triggers refuse.
    const attempts: [Knex, RegExp][] = isSqlite(db)
      ? [[db, /append-only/]]
      : [
          [db, /permission denied/],
          [stack.adminDb('accounts'), /append-only/],
        ];
    for (const [conn, refusal] of attempts) {
      await expect(conn('data_access_log').update({ decision: 'ALLOWED' })).rejects.toThrow(refusal);
      await expect(conn('data_access_log').where('id', '>', 0).delete()).rejects.toThrow(refusal);
      if (!isSqlite(conn)) await expect(conn.raw('TRUNCATE data_access_log')).rejects.toThrow(refusal);
    }
    expect(await db('data_access_log').count({ n: '*' }).first()).toEqual(before);
  });
});

describe('layer 5: group commit', () => {
  it('concurrent operations are each audited exactly once, with fewer or as many appends as records', async () => {
    let appends = 0;
    const count = (req: { url?: string }) => {
      if (req.url?.startsWith('/internal/audit')) appends += 1;
    };
    stack.subgraphs.accounts.server.on('request', count);
    const names = Array.from({ length: 12 }, (_, i) => `Concurrent${i}`);
    try {
      const results = await Promise.all(names.map((n) => raw(`query ${n} { me { accounts { mask } } }`, undefined, pay)));
      for (const r of results) expectData(r);
    } finally {
      stack.subgraphs.accounts.server.off('request', count);
    }
    const rows = await stack.dbs.accounts('data_access_log').whereIn('operation_name', names);
    expect(rows.map((r: { operation_name: string }) => r.operation_name).sort()).toEqual([...names].sort());
    expect(rows.every((r: { decision: string; layer: string }) => r.decision === 'ALLOWED' && r.layer === 'gateway')).toBe(true);
    expect(appends).toBeGreaterThan(0);
    expect(appends).toBeLessThanOrEqual(names.length);
  });
});

describe('layer 5: fail closed', () => {
  it('when the audit record cannot be written, protected data is not served and no subgraph is called', async () => {
    // The trigger that simulates the outage is DDL: not something the service's own role may do.
    const db = stack.adminDb('accounts');
    const sqlite = isSqlite(db);
    if (sqlite) await db.raw(`CREATE TRIGGER data_access_log_test_outage BEFORE INSERT ON data_access_log BEGIN SELECT RAISE(ABORT, 'simulated outage'); END`);
    else {
      await db.raw(
        `CREATE OR REPLACE FUNCTION data_access_log_test_outage() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'simulated outage'; END $$ LANGUAGE plpgsql`,
      );
      await db.raw('CREATE TRIGGER data_access_log_test_outage BEFORE INSERT ON data_access_log FOR EACH ROW EXECUTE FUNCTION data_access_log_test_outage()');
    }
    let alertsRequests = 0;
    const count = () => {
      alertsRequests += 1;
    };
    stack.subgraphs.alerts.server.on('request', count);
    try {
      const r = await raw('{ chargeAlerts { id riskScore reasons } }', undefined, pay);
      expect(r.data ?? null).toBeNull();
      expect(r.errors?.length).toBeGreaterThan(0);
      expect(alertsRequests).toBe(0);
      // The fence said why, in the gateway's log (not on the client's response).
      expect(logs.records().some((l) => String(l.msg).includes('AUDIT WRITE FAILED') && l.service === 'gateway')).toBe(true);
      // Operations that touch nothing protected need no audit and keep working.
      expectData(await raw(op('Offers'), undefined, ads));
    } finally {
      stack.subgraphs.alerts.server.off('request', count);
      await db.raw(sqlite ? 'DROP TRIGGER data_access_log_test_outage' : 'DROP TRIGGER data_access_log_test_outage ON data_access_log');
    }
    expectData(await raw('{ chargeAlerts { id } }', undefined, pay));
  });
});
