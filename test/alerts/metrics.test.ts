/**
 * The metrics that live in the subgraph processes (each service's /metrics, subgraphs/service.ts):
 * signature failures every service counts, and the alerts service's consumer lag and
 * freeze-command backlog (subgraphs/alerts/metrics.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { op } from '../helpers/contract.js';
import { expectData } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { pay, SUSPICIOUS } from '../helpers/alerts.js';
import { waitFor } from '../helpers/wait.js';

let stack: TestStack;
let alice: string;
beforeAll(async () => {
  stack = await startTestStack();
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
});

const metricsOf = async (name: 'alerts' | 'payments') => (await fetch(stack.subgraphs[name].url.replace(/\/graphql$/, '/metrics'))).text();
const value = (text: string, line: string) => {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
};

it('counts requests a subgraph refuses as not signed by a service it accepts', async () => {
  const url = stack.subgraphs.payments.url;
  expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' })).status).toBe(401);
  const internal = url.replace(/\/graphql$/, '/internal/events');
  expect((await fetch(internal, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
  const text = await metricsOf('payments');
  expect(value(text, 'paygraph_subgraph_signature_failures_total{service="payments",route="graphql"}')).toBe(1);
  expect(value(text, 'paygraph_subgraph_signature_failures_total{service="payments",route="events"}')).toBe(1);
});

it('reports the consumer caught up on the lease holder, and the freeze-command backlog while payments is down', async () => {
  await waitFor(async () => value(await metricsOf('alerts'), 'paygraph_alerts_consumer_leader') === 1, 'the consumer to lead');
  const p = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
  const alert = await (async () => {
    let found: { id: string } | undefined;
    await waitFor(async () => {
      const r = await stack.gql<{ chargeAlerts: { id: string; purchase: { id: string } }[] }>(op('MyAlerts'), {}, alice);
      found = expectData(r).chargeAlerts.find((a) => a.purchase.id === p.purchase!.id);
      return found !== undefined;
    }, 'the alert');
    return found!;
  })();
  let text = await metricsOf('alerts');
  expect(value(text, 'paygraph_alerts_consumer_lag_seconds')).toBe(0);
  expect(value(text, 'paygraph_alerts_consumer_applied_events')).toBeGreaterThan(0);
  expect(value(text, 'paygraph_alerts_freeze_backlog')).toBe(0);

  await stack.stopSubgraph('payments'); // the freeze cannot be delivered
  try {
    const r = await stack.gql<{ resolveChargeAlert: { userErrors: unknown[] } }>(op('ResolveAlert'), { id: alert.id, fraudulent: true }, alice);
    expect(expectData(r).resolveChargeAlert.userErrors).toEqual([]);
    text = await metricsOf('alerts');
    expect(value(text, 'paygraph_alerts_freeze_backlog')).toBe(1);
    expect(value(text, 'paygraph_alerts_freeze_oldest_pending_seconds')).toBeGreaterThanOrEqual(0);
    // The feed cannot be asked: the lag is unknown, not 0.
    expect(text).toMatch(/^paygraph_alerts_consumer_lag_seconds nan$/im);
  } finally {
    await stack.startSubgraph('payments');
  }
  await waitFor(async () => value(await metricsOf('alerts'), 'paygraph_alerts_freeze_backlog') === 0, 'the freeze to be delivered', 40_000);
}, 60_000);
