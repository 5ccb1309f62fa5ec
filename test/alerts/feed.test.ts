/**
 * The payments event feed's long poll (`waitMs`) and the consumer lease, on real servers: the
 * feed answers when a purchase commits (not when the wait ends), a pending long poll never holds
 * up stopping either side, and the lease lets one worker at a time consume.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callInternal, InternalCallError } from '../../lib/transport/internal-client.js';
import { ConsumerLease, LeaseLostError } from '../../subgraphs/alerts/lease.js';
import { EVENTS_MAX_WAIT_MS, type OutboxEvent } from '../../subgraphs/payments/internal.js';
import type { PaymentsServices } from '../../subgraphs/payments/services.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { NORMAL, pay, SUSPICIOUS, alertsStatus } from '../helpers/alerts.js';
import { waitFor } from '../helpers/wait.js';
import { signerOf } from '../helpers/signing.js';

let stack: TestStack;
let alice: string;
beforeAll(async () => {
  stack = await startTestStack({ logLevel: 'warn' });
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
});

/** The payments feed is read by the alerts service: the tests sign as it. */
const asAlerts = signerOf('alerts');
const paymentsBase = () => stack.subgraphs.payments.url.replace(/\/graphql$/, '');

async function lastEventId(): Promise<number> {
  const row = (await stack.dbs.payments('outbox_events').max({ id: 'id' }).first()) as { id: number | string | null } | undefined;
  return Number(row?.id ?? 0);
}

/** Starts a feed request; `settled` tells whether it answered yet; `started` is on the monotonic clock. */
function longPoll(after: number, waitMs: number) {
  const state = { settled: false };
  const started = performance.now();
  const promise = callInternal<{ events: OutboxEvent[] }>(
    asAlerts,
    'payments',
    paymentsBase(),
    'events',
    { after, limit: 10, waitMs },
    { timeoutMs: waitMs + 10_000 },
  ).finally(() => {
    state.settled = true;
  });
  return { state, promise, started };
}

describe('payments events route: long poll', () => {
  beforeAll(async () => {
    // Only the test's own requests wait on the feed: the alerts consumer is not polling.
    await stack.stopSubgraph('alerts');
  });
  afterAll(async () => {
    await stack.startSubgraph('alerts');
  });

  it('validates waitMs', async () => {
    for (const waitMs of [-1, 1.5, EVENTS_MAX_WAIT_MS + 1, '100']) {
      const err = await callInternal(asAlerts, 'payments', paymentsBase(), 'events', { after: 0, limit: 1, waitMs }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InternalCallError);
      expect((err as InternalCallError).status).toBe(400);
    }
  });

  it('answers at once when events exist, whatever waitMs', async () => {
    const poll = longPoll(0, EVENTS_MAX_WAIT_MS);
    // The seeded ledger has no events: make one first.
    await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    const { events } = await poll.promise;
    expect(events.length).toBeGreaterThan(0);
    const again = await callInternal<{ events: OutboxEvent[] }>(
      asAlerts,
      'payments',
      paymentsBase(),
      'events',
      { after: 0, limit: 10, waitMs: EVENTS_MAX_WAIT_MS },
      { timeoutMs: EVENTS_MAX_WAIT_MS + 10_000 },
    );
    expect(again.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  /** A long poll after the last event, with the longest wait, once it waits on the feed. */
  async function waitingPoll() {
    const after = await lastEventId();
    const feed = (stack.subgraphs.payments.services as PaymentsServices).feed;
    const poll = longPoll(after, EVENTS_MAX_WAIT_MS);
    await waitFor(() => feed.waiting >= 1, 'the request to wait on the feed');
    return { after, feed, poll };
  }

  it('a waiting request returns as soon as a purchase commits, with its event', async () => {
    const { after, feed, poll } = await waitingPoll();
    expect(poll.state.settled).toBe(false);

    const made = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    const { events } = await poll.promise;
    expect(events.map((e) => (e.payload as { purchaseId?: string }).purchaseId)).toContain(made.purchase!.id);
    expect(events.every((e) => e.id > after)).toBe(true);
    // Answered by the commit, not by the end of the wait (30 s; the test would time out first).
    expect(performance.now() - poll.started).toBeLessThan(EVENTS_MAX_WAIT_MS);
    expect(feed.waiting).toBe(0);
  });

  it('a pending long poll does not hold up stopping payments: it is answered (empty) at once', async () => {
    const { poll } = await waitingPoll();
    await stack.stopSubgraph('payments');
    const { events } = await poll.promise;
    expect(events).toEqual([]);
    expect(performance.now() - poll.started).toBeLessThan(EVENTS_MAX_WAIT_MS);
    await stack.startSubgraph('payments');
  });
});

describe('alerts consumer', () => {
  it('uses the long poll, and stopping alerts aborts its pending poll instead of waiting for the answer', async () => {
    await waitFor(async () => (await alertsStatus(stack)).consumer.leader, 'the consumer to hold the lease');
    const feed = (stack.subgraphs.payments.services as PaymentsServices).feed;
    // Watch the consumer's feed requests on the payments server: each one either is answered
    // (its response finishes) or is aborted by the consumer (closed before the answer).
    const polls: { open: boolean; aborted: Promise<boolean> }[] = [];
    const watch = (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!req.url?.startsWith('/internal/events')) return;
      const poll = { open: true, aborted: Promise.resolve(false) };
      poll.aborted = new Promise((resolve) =>
        res.on('close', () => {
          poll.open = false;
          resolve(!res.writableFinished);
        }),
      );
      polls.push(poll);
    };
    const payments = stack.subgraphs.payments.server;
    payments.on('request', watch);
    try {
      // A commit answers the poll the consumer has pending now; the next one it makes is watched.
      expect((await pay(stack, alice, { accountId: 'acc_alice_checking', ...NORMAL })).userErrors).toEqual([]);
      await waitFor(() => polls.some((p) => p.open) && feed.waiting >= 1, 'the consumer to wait on the feed');
      // The consumer polls one request at a time: the newest open one is the long poll now waiting
      // (an earlier one may have been answered and not yet have emitted its 'close').
      const pending = polls.filter((p) => p.open).at(-1)!;
      await stack.stopSubgraph('alerts');
      // Aborted by the stop: answered, it would have finished (after up to FEED_WAIT_MS of waiting).
      expect(await pending.aborted).toBe(true);
    } finally {
      payments.off('request', watch);
    }
    // ...and released the lease for a standby.
    expect(await new ConsumerLease(stack.dbs.alerts).currentHolder()).toBeNull();
    await stack.startSubgraph('alerts');
    await waitFor(async () => (await alertsStatus(stack)).consumer.leader, 'the restarted consumer to take the lease');
  });
});

describe('consumer lease', () => {
  it('one holder at a time; renewals fence; a takeover only after expiry', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const db = stack.dbs.alerts;
    const feed = `test-lease-${randomUUID()}`;
    const a = new ConsumerLease(db, feed, 10_000, clock);
    const b = new ConsumerLease(db, feed, 10_000, clock);
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(false);
    expect(await a.currentHolder()).toBe(a.holder);
    // The holder renews inside its transactions; the other cannot.
    await db.transaction((trx) => a.fence(trx));
    await expect(db.transaction((trx) => b.fence(trx))).rejects.toBeInstanceOf(LeaseLostError);

    now += 9_999;
    expect(await b.acquire()).toBe(false); // renewed by a's fence: not expired yet
    now += 10_002;
    expect(await b.acquire()).toBe(true); // expired: taken over
    // The old holder's next transaction fails instead of processing an event twice.
    await expect(db.transaction((trx) => a.fence(trx))).rejects.toBeInstanceOf(LeaseLostError);
    expect(await a.acquire()).toBe(false);

    await b.release();
    expect(await a.acquire()).toBe(true); // released: free at once
  });
});
