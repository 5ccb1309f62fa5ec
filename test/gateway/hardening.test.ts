/** Production hardening at the gateway: limits, rate limits, client-safe errors, logs, health, metrics, faults. */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { close, listen } from '../../lib/http.js';
import { op } from '../helpers/contract.js';
import { LogCapture } from '../helpers/logs.js';
import { expectData, expectGraphQLError, expectNoLeak, expectUserErrors, scrubVolatile } from '../helpers/matchers.js';
import { AUDIT_LOG_SQL, postGraphQL, startTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/stack.js';
import { httpRequest } from '../../lib/transport/http-client.js';

const SEND = op('SendMoney');

describe('request limits', () => {
  let stack: TestStack;
  let alice: string;
  beforeAll(async () => {
    stack = await startTestStack({ limits: { maxDepth: 4, maxAliases: 2, maxDirectives: 3, maxTokens: 60, mutationsPerWindow: 3, mutationWindowMs: 60_000 } });
    alice = await stack.token('alice');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    ['depth', '{ me { accounts { transactions { edges { node { id } } } } } }', 'QUERY_TOO_DEEP'],
    ['aliases', '{ a: merchants(first: 1) { id } b: merchants(first: 1) { id } c: merchants(first: 1) { id } }', 'TOO_MANY_ALIASES'],
    [
      'directives',
      '{ merchants(first: 1) { id @include(if: true) name @include(if: true) country @include(if: true) city @skip(if: false) } }',
      'TOO_MANY_DIRECTIVES',
    ],
    ['tokens', `{ merchants(first: 1) { ${'id '.repeat(80)} } }`, 'QUERY_TOO_LARGE'],
  ])('refuses a query over the %s limit with a clear code, before any subgraph is called', async (_, query, code) => {
    const before = await stack.countQueries(
      async () => {
        expectGraphQLError(await stack.gql(query, {}, alice), code, { status: 400, noData: true });
      },
      ['accounts', 'payments', 'merchants'],
      // Only the audit log's own append (a refusal of payment-only data is recorded, below).
      (sql) => !/outbox_events/.test(sql) && !AUDIT_LOG_SQL.test(sql),
    );
    expect(before).toBe(0);
  });

  it('records a refusal by validation of an operation selecting payment-only data, with its code', async () => {
    const res = await stack.gql('query TooDeep { me { accounts { transactions { edges { node { id } } } } } }', {}, alice);
    expectGraphQLError(res, 'QUERY_TOO_DEEP', { status: 400, noData: true });
    const rows = (await stack.dbs.accounts('data_access_log').where({ operation_name: 'TooDeep' }).select('decision', 'leaf')) as {
      decision: string;
      leaf: string;
    }[];
    expect(rows.map((r) => [r.decision, (JSON.parse(r.leaf) as { reason: string }).reason])).toEqual([['REFUSED', 'QUERY_TOO_DEEP']]);
  });

  it('refuses a query over the cost limit with QUERY_TOO_COSTLY', async () => {
    const costly = await startTestStack({ limits: { maxCost: 20 } });
    try {
      const res = await costly.gql(
        '{ merchants(first: 1) { id name category mcc country city } merchant(id: "mer_ikea") { id name category mcc country city } }',
      );
      expectGraphQLError(res, 'QUERY_TOO_COSTLY', { status: 400, noData: true });
      expectData(await costly.gql('{ merchants(first: 1) { id } }'));
    } finally {
      await costly.stop();
    }
  });

  it('accepts a query within every limit', async () => {
    const res = await stack.gql('{ merchants(first: 2) { id name } }', {}, alice);
    expect(expectData(res)).toMatchObject({ merchants: [{ id: expect.any(String) }, { id: expect.any(String) }] });
  });

  it('refuses a body over the size cap with 413', async () => {
    const res = await postGraphQL(stack.url, { query: `{ merchants { id } } # ${'x'.repeat(200_000)}` });
    expectGraphQLError(res, 'PAYLOAD_TOO_LARGE', { status: 413, noData: true });
  });

  it('gives no field suggestions', async () => {
    const res = await stack.gql('{ merchantz(first: 1) { id } }');
    expectGraphQLError(res, 'GRAPHQL_VALIDATION_FAILED');
    expect(JSON.stringify(res.errors)).not.toMatch(/did you mean/i);
  });

  it('rate-limits mutations per user with RATE_LIMITED and a retry hint', async () => {
    const input = (n: number) => ({
      input: { fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '0', currency: 'USD' }, idempotencyKey: `rate-${n}` },
    });
    for (let i = 0; i < 3; i++) {
      const ok = await stack.gql<{ sendTransfer: { transfer: null; userErrors: { code: string; field: string[] | null; message: string }[] } }>(
        SEND,
        input(i),
        alice,
      );
      expectUserErrors(expectData(ok).sendTransfer, ['INVALID_AMOUNT']);
    }
    const limited = await stack.gql(SEND, input(3), alice);
    expect(Number(expectGraphQLError(limited, 'RATE_LIMITED', { status: 429 }).extensions?.retryAfterSeconds)).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Per user: bob is not affected by alice's quota; queries are never rate-limited.
    expectData(await stack.gql(SEND, { input: { ...input(9).input, fromAccountId: 'acc_bob_checking', toHandle: 'alice' } }, await stack.token('bob')));
    expectData(await stack.gql('{ me { id } }', {}, alice));
  });
});

describe('errors, logs, health and metrics in production mode', () => {
  let stack: TestStack;
  const logs = new LogCapture();
  beforeAll(async () => {
    // Ad-hoc documents, so trusted documents are not required here (test/gateway/trusted-documents.test.ts checks them).
    stack = await startTestStack({ production: true, logDestination: logs, logLevel: 'info', gateway: { trustedDocuments: { mode: 'any' } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers an internal fault with INTERNAL_SERVER_ERROR and a request id that is in the logs, and no internals', async () => {
    await stack.dbs.merchants.destroy(); // the merchants database goes away under the service
    const res = await stack.gql<{ merchants: unknown }>('{ merchants(first: 2) { id name } }');
    const err = expectGraphQLError(res, 'INTERNAL_SERVER_ERROR', { status: 200 });
    const requestId = String(err.extensions?.requestId);
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    // No internals in the body (the request id, random, is left out of the scan).
    expect(scrubVolatile(res.text)).not.toMatch(/knex|sqlite|pool|stack|\.ts:|at /i);
    expect(logs.records().some((r) => r.requestId === requestId && r.level === 50)).toBe(true);
  });

  it('carries the request id from the gateway to the subgraphs in the logs', async () => {
    const res = await stack.gql('{ me { id } }', {}, await stack.token('alice'));
    const requestId = res.headers.get('x-request-id');
    const services = new Set(
      logs
        .records()
        .filter((r) => r.requestId === requestId)
        .map((r) => r.service),
    );
    expect(services).toContain('gateway');
    expect(services).toContain('accounts');
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    const base = stack.url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    for (const s of Object.values(stack.subgraphs)) expect((await fetch(s.url.replace(/\/graphql$/, '/health'))).status).toBe(200);
    expect((await fetch(stack.subgraphs.merchants.url.replace(/\/graphql$/, '/ready'))).status).toBe(503);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/paygraph_gateway_requests_total\{operation="unlisted",type="query",outcome="(ok|error)"\} \d+/);
    expect(metrics).toContain('paygraph_gateway_request_duration_seconds_bucket');
    expect(metrics).toContain('paygraph_fence_refusals_total');
    expect(metrics).toMatch(/paygraph_subgraph_errors_total\{subgraph="merchants"\} [1-9]/);
  });
});

describe('secrets and money never reach the logs', () => {
  it('logs no token, secret, amount, balance or account mask while money moves', async () => {
    const logs = new LogCapture();
    const stack = await startTestStack({ logDestination: logs, logLevel: 'debug' });
    try {
      const alice = await stack.token('alice');
      const balances = await stack.gql<{ me: { accounts: { mask: string; balance: { current: { amount: string } } }[] } }>(op('MyBalances'), {}, alice);
      // Every service's private key, as its PEM body and as its raw seed.
      const privateKeys = Object.values(stack.keys).flatMap((k) => [
        k.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
        k.export({ format: 'jwk' }).d!,
      ]);
      const secrets = [alice, TEST_JWT_SECRET, ...privateKeys];
      const values = ['2321.87', '1234.56', '98.76'];
      const masks: string[] = [];
      const sent = await stack.gql<{ sendTransfer: { transfer: unknown; userErrors: unknown[] } }>(
        SEND,
        {
          input: {
            fromAccountId: 'acc_alice_checking',
            toHandle: 'bob',
            amount: { amount: '2321.87', currency: 'USD' },
            note: 'rent',
            idempotencyKey: 'log-scan-1',
          },
        },
        alice,
      );
      expect(sent.data!.sendTransfer.userErrors).toEqual([]);
      const paid = await stack.gql<{ makePurchase: { purchase: unknown; userErrors: unknown[] } }>(
        op('Pay'),
        { input: { accountId: 'acc_alice_card', merchantId: 'mer_ikea', amount: { amount: '1234.56', currency: 'USD' }, idempotencyKey: 'log-scan-2' } },
        alice,
      );
      expect(paid.data!.makePurchase.userErrors).toEqual([]);
      await stack.gql(
        SEND,
        { input: { fromAccountId: 'acc_alice_checking', toHandle: 'nobody', amount: { amount: '98.76', currency: 'USD' }, idempotencyKey: 'log-scan-3' } },
        alice,
      );
      const after = await stack.gql<{ me: { accounts: { mask: string; balance: { current: { amount: string } } }[] } }>(op('MyBalances'), {}, alice);
      for (const a of [...balances.data!.me.accounts, ...after.data!.me.accounts]) {
        values.push(a.balance.current.amount);
        masks.push(a.mask);
      }
      expect(logs.lines.length).toBeGreaterThan(10);
      // Every logged value, each secret as a whole token: request ids, timings and timestamps (a
      // 4-digit mask can occur in them by chance) are left out of the scan.
      expectNoLeak(logs.lines.join('\n'), [...secrets, ...values, ...masks], 'the logs');
    } finally {
      await stack.stop();
    }
  });
});

describe('faults', () => {
  let stack: TestStack;
  let alice: string;
  beforeAll(async () => {
    stack = await startTestStack();
    alice = await stack.token('alice');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps MyBalances answering with the ads subgraph down, and gives Offers a clear error', async () => {
    await stack.stopSubgraph('ads');
    try {
      const balances = await stack.gql<{ me: { accounts: unknown[] } }>(op('MyBalances'), {}, alice);
      expect(expectData(balances).me.accounts).toHaveLength(2);
      const offers = await stack.gql<{ me: { sponsoredOffers: unknown } | null }>(op('Offers'), {}, alice);
      expect(expectGraphQLError(offers, 'SUBGRAPH_UNAVAILABLE').message).toMatch(/ads/);
      const ready = await fetch(stack.url.replace(/\/graphql$/, '/ready'));
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ unreachable: ['ads'] });
    } finally {
      await stack.startSubgraph('ads');
    }
    const back = await stack.gql<{ me: { sponsoredOffers: unknown[] } }>(op('Offers'), {}, alice);
    expect(expectData(back).me.sponsoredOffers.length).toBeGreaterThan(0);
  });

  it('gives payments fields a clear error while payments is down, and recovers when it is back', async () => {
    await stack.stopSubgraph('payments');
    try {
      const res = await stack.gql<{ me: { accounts: { balance: unknown }[] } | null }>(op('MyBalances'), {}, alice);
      expect(res.errors?.some((e) => e.extensions?.code === 'SUBGRAPH_UNAVAILABLE' && /payments/.test(e.message))).toBe(true);
    } finally {
      await stack.startSubgraph('payments');
    }
    const res = await stack.gql<{ me: { accounts: { balance: unknown }[] } }>(op('MyBalances'), {}, alice);
    expect(res.errors).toBeUndefined();
    expect(res.data!.me.accounts.every((a) => a.balance)).toBe(true);
  });
});

describe('gateway to subgraph connections', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('are kept alive and reused: sequential operations open no new connection per request', async () => {
    const alice = await stack.token('alice');
    const opened: Record<string, number> = {};
    const listeners = (['accounts', 'payments'] as const).map((name) => {
      const on = () => {
        opened[name] = (opened[name] ?? 0) + 1;
      };
      stack.subgraphs[name].server.on('connection', on);
      return () => stack.subgraphs[name].server.off('connection', on);
    });
    try {
      for (let i = 0; i < 10; i++) {
        const res = await stack.gql(op('MyBalances'), {}, alice);
        expect(res.errors).toBeUndefined();
      }
    } finally {
      for (const off of listeners) off();
    }
    // 10 operations, each calling accounts (the query and the audit append) and payments: with
    // keep-alive a sequential client needs at most a connection or two per subgraph, not one per call.
    expect(opened.accounts ?? 0).toBeLessThanOrEqual(2);
    expect(opened.payments ?? 0).toBeLessThanOrEqual(2);
  });
});

describe('the service-to-service HTTP client (lib/transport/http-client.ts httpRequest)', () => {
  it('reads whole responses, and fails clearly on refused connections, timeouts and responses cut short', async () => {
    let mode: 'ok' | 'hang' | 'cut' = 'ok';
    const hanging: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (mode === 'ok') return res.end(JSON.stringify({ echo: req.headers['x-test'] ?? null }));
        if (mode === 'hang') return void hanging.push(res);
        res.writeHead(200, { 'content-length': '1000' });
        res.write('{"partial":');
        setImmediate(() => res.socket?.destroy());
      });
    });
    const base = await listen(server, 0);
    try {
      const ok = await httpRequest(`${base}/x`, { headers: { 'x-test': 'yes' }, body: '{}', timeoutMs: 5_000 });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body.toString('utf8'))).toEqual({ echo: 'yes' });
      mode = 'hang';
      await expect(httpRequest(`${base}/x`, { body: '{}', timeoutMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      mode = 'cut';
      await expect(httpRequest(`${base}/x`, { body: '{}', timeoutMs: 5_000 })).rejects.toBeInstanceOf(Error);
    } finally {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await close(server);
    }
    await expect(httpRequest(`${base}/x`, { body: '{}', timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
