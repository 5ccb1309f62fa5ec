/**
 * Scale-out of the alerts side over Redis (docs/alerts.md, "Scale-out"): two whole stacks in this
 * process sharing one database (a fresh PostgreSQL database from PAYGRAPH_TEST_DATABASE_URL, or
 * else SQLite files in a temporary directory) and one Redis, so two payments services, two alerts
 * services (consumers) and two gateways. Shows that an alert raised by one alerts worker reaches a
 * subscriber connected through the other, once; that the consumer lease lets one worker at a time
 * process the feed (a graceful stop hands over, nothing is raised twice); and that a commit in one
 * payments process wakes a long poll waiting in the other.
 *
 * Needs Redis: REDIS_URL or PAYGRAPH_TEST_REDIS_URL (`npm run test:scale` sets the latter).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callInternal } from '../../lib/transport/internal-client.js';
import { ConsumerLease } from '../../subgraphs/alerts/lease.js';
import { EVENTS_MAX_WAIT_MS, type OutboxEvent } from '../../subgraphs/payments/internal.js';
import type { PaymentsServices } from '../../subgraphs/payments/services.js';
import { op } from '../helpers/contract.js';
import { freshPostgresDatabase, startTestStack, type TestStack } from '../helpers/stack.js';
import { pay, raisedAlert, subscribe, SUSPICIOUS, waitForLive, type LiveSubscription, type WsMessage, alertsStatus } from '../helpers/alerts.js';
import { waitFor } from '../helpers/wait.js';
import { signerOf } from '../helpers/signing.js';

const redisUrl = process.env.REDIS_URL || process.env.PAYGRAPH_TEST_REDIS_URL || undefined;
const pgAdminUrl = process.env.PAYGRAPH_TEST_DATABASE_URL || undefined;

function raisedPurchase(m: WsMessage): string {
  const a = raisedAlert(m);
  expect(a.purchase.merchant.name).toBe('Air France'); // joined by that stack's gateway
  return a.purchase.id;
}

describe.skipIf(!redisUrl)('alerts scale-out over Redis (needs REDIS_URL or PAYGRAPH_TEST_REDIS_URL; skipped without)', () => {
  let one: TestStack;
  let two: TestStack;
  let cleanup: () => Promise<void> = async () => undefined;
  let alice: string;

  const consumer = async (s: TestStack) => (await alertsStatus(s)).consumer;

  beforeAll(async () => {
    // One shared database for both stacks: that is what makes them one deployment.
    let shared: { databaseUrl: string } | { dataDir: string };
    if (pgAdminUrl) {
      const db = await freshPostgresDatabase(pgAdminUrl);
      shared = { databaseUrl: db.url };
      cleanup = () => db.drop();
    } else {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-alerts-scale-'));
      shared = { dataDir: dir };
      cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
    }
    one = await startTestStack({ ...shared, redisUrl, logLevel: 'warn' });
    // Stack one's consumer takes the lease first; stack two's stands by.
    await waitFor(async () => (await consumer(one)).leader, 'the first consumer to take the lease');
    two = await startTestStack({ ...shared, redisUrl, logLevel: 'warn' });
    alice = await one.token('alice');
    expect((await alertsStatus(one)).bus.distributed).toBe(true);
    expect((await alertsStatus(two)).bus.distributed).toBe(true);
  });
  afterAll(async () => {
    await two?.stop();
    await one?.stop();
    await cleanup();
  });

  it('an alert raised by worker 1 reaches a subscriber of worker 2, once', async () => {
    expect(await new ConsumerLease(one.dbs.alerts).currentHolder()).toBe((await consumer(one)).holder);
    expect((await consumer(two)).leader).toBe(false);
    const appliedBefore = (await consumer(one)).applied;

    const viaTwo = subscribe(two, alice, op('ChargeAlerts'));
    const viaOne = subscribe(one, alice, op('ChargeAlerts'));
    try {
      await waitForLive(two, 1);
      await waitForLive(one, 1);
      const first = await pay(one, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
      expect(raisedPurchase(await viaTwo.next())).toBe(first.purchase!.id);
      expect(raisedPurchase(await viaOne.next())).toBe(first.purchase!.id);
      // Raised by worker 1: worker 2 applied nothing.
      expect((await consumer(one)).applied).toBeGreaterThan(appliedBefore);
      expect((await consumer(two)).applied).toBe(0);

      // Once: the next message on each subscription is the next purchase's alert.
      const second = await pay(one, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
      expect(raisedPurchase(await viaTwo.next())).toBe(second.purchase!.id);
      expect(raisedPurchase(await viaOne.next())).toBe(second.purchase!.id);
      expect(viaTwo.pending()).toBe(0);
      expect(viaOne.pending()).toBe(0);
    } finally {
      await viaTwo.dispose();
      await viaOne.dispose();
    }
  });

  it('with the lease, two consumers never raise one alert twice, across a hand-over', async () => {
    const sub: LiveSubscription = subscribe(two, alice, op('ChargeAlerts'));
    await waitForLive(two, 1);
    const made: string[] = [];
    const received: string[] = [];
    const expectNext = async (purchaseId: string) => {
      received.push(raisedPurchase(await sub.next()));
      expect(received.at(-1)).toBe(purchaseId);
    };
    try {
      // Purchases through both gateways (so both payments processes commit), worker 1 consuming.
      for (const stack of [one, two, one]) {
        const p = await pay(stack, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
        made.push(p.purchase!.id);
        await expectNext(p.purchase!.id);
      }
      expect((await consumer(two)).applied).toBe(0);

      // Worker 1 stops (releasing the lease): worker 2 takes over and goes on from the position.
      await one.stopSubgraph('alerts');
      await waitFor(async () => (await consumer(two)).leader, 'the second consumer to take over');
      for (const stack of [two, one, two]) {
        const p = await pay(stack, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
        made.push(p.purchase!.id);
        await expectNext(p.purchase!.id);
      }
      expect((await consumer(two)).applied).toBeGreaterThan(0);

      // Worker 1 comes back as a standby: it raises nothing, worker 2 keeps the lease.
      await one.startSubgraph('alerts');
      const p = await pay(one, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
      made.push(p.purchase!.id);
      await expectNext(p.purchase!.id);
      expect((await consumer(one)).applied).toBe(0);
      expect((await consumer(two)).leader).toBe(true);
    } finally {
      await sub.dispose();
    }
    expect(received).toEqual(made);
    expect(sub.pending()).toBe(0);

    // Every event applied exactly once in effect: one history row per purchase event, one alert per purchase.
    const lastEvent = Number(((await one.dbs.payments('outbox_events').max({ id: 'id' }).first()) as { id: number | string }).id);
    await waitFor(
      async () =>
        Number(((await one.dbs.alerts('consumer_positions').where({ feed: 'payments' }).first()) as { position: number | string }).position) >= lastEvent,
      'the consumer to catch up',
    );
    const history = (await one.dbs.alerts('purchase_history').count({ n: '*' }).first()) as { n: number | string };
    const events = (await one.dbs.payments('outbox_events').where({ event_type: 'PURCHASE_POSTED' }).count({ n: '*' }).first()) as { n: number | string };
    expect(Number(history.n)).toBe(Number(events.n));
    const alerts = (await one.dbs.alerts('charge_alerts').whereIn('purchase_id', made).select('purchase_id')) as { purchase_id: string }[];
    expect(alerts.map((a) => a.purchase_id).sort()).toEqual([...made].sort());
  });

  it('a commit in payments process 2 wakes a long poll waiting in payments process 1', async () => {
    // Only this test's request waits on payments 1's feed: no consumer is polling.
    await one.stopSubgraph('alerts');
    await two.stopSubgraph('alerts');
    const after = Number(((await one.dbs.payments('outbox_events').max({ id: 'id' }).first()) as { id: number | string }).id);
    const feed = (one.subgraphs.payments.services as PaymentsServices).feed;
    let settled = false;
    const started = performance.now();
    const poll = callInternal<{ events: OutboxEvent[] }>(
      signerOf('alerts', one.keys),
      'payments',
      one.subgraphs.payments.url.replace(/\/graphql$/, ''),
      'events',
      { after, limit: 10, waitMs: EVENTS_MAX_WAIT_MS },
      { timeoutMs: EVENTS_MAX_WAIT_MS + 10_000 },
    ).finally(() => {
      settled = true;
    });
    await waitFor(() => feed.waiting >= 1, 'the request to wait on payments 1');
    expect(settled).toBe(false);

    const made = await pay(two, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
    const { events } = await poll;
    expect(events.map((e) => (e.payload as { purchaseId?: string }).purchaseId)).toContain(made.purchase!.id);
    // Woken by the commit in the other process (over Redis), not by the end of the 30 s wait.
    expect(performance.now() - started).toBeLessThan(EVENTS_MAX_WAIT_MS);
  });
});
