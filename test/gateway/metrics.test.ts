/**
 * Bounded metrics (gateway/metrics.ts): operation labels come from the trusted-documents manifest
 * or are `unlisted`, so 10,000 distinct client-chosen operation names do not grow /metrics; the
 * subgraph fetch latency, audit failures and active subscriptions are there; and /metrics can be
 * served on a port of its own, off the public one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { op } from '../helpers/contract.js';
import { expectData, expectGraphQLError } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { subscribe, waitForLive } from '../helpers/alerts.js';
import { waitFor } from '../helpers/wait.js';

const scrape = async (url: string) => (await fetch(url)).text();
const value = (text: string, line: string) => {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
};

describe('on the public port', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('stays the same size after 10,000 distinct unknown operation names', async () => {
    const warm = async (names: string[]) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < names.length) {
            const name = names[next++]!;
            const r = await fetch(stack.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ query: `query ${name} { __typename }` }),
            });
            expect(r.status).toBe(200);
            await r.arrayBuffer();
          }
        }),
      );
    };
    await warm(['Warm1', 'Warm2']); // every series that unknown operations create exists now
    const before = await scrape(stack.gateway.metricsUrl);
    await warm(Array.from({ length: 10_000 }, (_, i) => `Probe${i}_${Math.random().toString(36).slice(2, 8)}`));
    const after = await scrape(stack.gateway.metricsUrl);
    // Only counter and histogram values change (a few more digits), and no new series (beyond the
    // runtime's own, e.g. a first major GC).
    const series = (t: string) =>
      t
        .split('\n')
        .filter((l) => l && !l.startsWith('#') && !/^paygraph_gateway_(nodejs|process)_/.test(l))
        .map((l) => l.slice(0, l.lastIndexOf(' ')));
    expect(series(after).filter((s) => !series(before).includes(s))).toEqual([]);
    expect(after.length).toBeLessThan(before.length + 2_000);
    expect(after).not.toMatch(/Probe\d/);
    expect(value(after, 'paygraph_gateway_requests_total{operation="unlisted",type="query",outcome="ok"}')).toBeGreaterThanOrEqual(10_002);
    // The figure, for the record (docs/operations.md#metrics).
    process.stderr.write(`/metrics: ${before.length} bytes before, ${after.length} bytes after 10,000 distinct unknown operation names\n`);
  }, 180_000);

  it('times subgraph fetches, names listed operations, and counts active subscriptions', async () => {
    const alice = await stack.token('alice');
    expectData(await stack.gql(op('MyBalances'), {}, alice));
    const sub = subscribe(stack, alice, op('ChargeAlerts'));
    try {
      await waitForLive(stack, 1);
      const text = await scrape(stack.gateway.metricsUrl);
      expect(value(text, 'paygraph_gateway_requests_total{operation="MyBalances",type="query",outcome="ok"}')).toBe(1);
      expect(value(text, 'paygraph_subgraph_fetch_duration_seconds_count{subgraph="accounts",outcome="ok"}')).toBeGreaterThan(0);
      expect(value(text, 'paygraph_subgraph_fetch_duration_seconds_count{subgraph="payments",outcome="ok"}')).toBeGreaterThan(0);
      expect(value(text, 'paygraph_gateway_active_subscriptions')).toBe(1);
    } finally {
      await sub.dispose();
    }
    await waitFor(async () => value(await scrape(stack.gateway.metricsUrl), 'paygraph_gateway_active_subscriptions') === 0, 'no active subscription');
  });

  it('counts audit failures (and the operation is refused)', async () => {
    await stack.stopSubgraph('accounts'); // the audit log is the accounts service's
    try {
      const r = await stack.gql(op('MyBalances'), {}, await stack.token('alice'));
      expectGraphQLError(r, 'AUDIT_UNAVAILABLE');
      expect(value(await scrape(stack.gateway.metricsUrl), 'paygraph_fence_audit_failures_total')).toBeGreaterThan(0);
    } finally {
      await stack.startSubgraph('accounts');
    }
  });
});

describe('on a port of its own (PAYGRAPH_METRICS_PORT)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ gateway: { metricsPort: 0 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('serves /metrics there only, and nothing else there', async () => {
    const metricsUrl = stack.gateway.metricsUrl;
    expect(new URL(metricsUrl).port).not.toBe(new URL(stack.url).port);
    expect(await scrape(metricsUrl)).toContain('paygraph_gateway_requests_total');
    expect((await fetch(stack.url.replace(/\/graphql$/, '/metrics'))).status).toBe(404);
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/graphql'), { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
