/**
 * Resumable alerts through the gateway, with a real graphql-ws client: every alert carries an
 * opaque `cursor`; `chargeAlertRaised(after:)` replays, in order and once each, the caller's alerts
 * committed after it, then goes live with no gap and no duplicate; the replay is bounded
 * (CURSOR_EXPIRED); a user holds at most N subscriptions per gateway; at the token's expiry each
 * subscription ends with UNAUTHENTICATED and the client resumes, with a new token, by cursor.
 */
import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { loadConfig } from '../../lib/config.js';
import { encodeCursor } from '../../lib/cursor.js';
import { DEFAULT_MAX_SUBSCRIPTIONS_PER_USER } from '../../gateway/subscription-server.js';
import { REPLAY_MAX_ALERTS } from '../../subgraphs/alerts/replay.js';
import { FLAGGED_AFTER_WARM_UP, pay, raisedAlert, subscribe, subscriptionErrors, waitForLive, warmUp, type LiveSubscription } from '../helpers/alerts.js';
import { expectData } from '../helpers/matchers.js';
import { startTestStack, TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const RESUME = 'subscription Resume($after: String) { chargeAlertRaised(after: $after) { id cursor purchase { id } } }';
const MY_ALERTS = '{ chargeAlerts { id cursor purchase { id } } }';
const MAX_PER_USER = 3;

interface Resumed {
  id: string;
  cursor: string;
  purchase: { id: string };
}

let stack: TestStack;
let bob: string;
beforeAll(async () => {
  stack = await startTestStack({ logLevel: 'warn', maxSubscriptionsPerUser: MAX_PER_USER });
  bob = await stack.token('bob');
  await warmUp(stack, bob, 'acc_bob_card');
});
afterAll(async () => {
  await stack?.stop();
});

/** A charge that raises an alert (after the warm-up): its purchase id. */
async function flagged(token: string, accountId: string): Promise<string> {
  const r = await pay(stack, token, { accountId, ...FLAGGED_AFTER_WARM_UP });
  expect(r.userErrors).toEqual([]);
  return r.purchase!.id;
}

/** The next `n` alerts of a subscription. */
async function take(sub: LiveSubscription, n: number): Promise<Resumed[]> {
  const out: Resumed[] = [];
  for (let i = 0; i < n; i++) out.push(raisedAlert<Resumed>(await sub.next()));
  return out;
}

/** The user's alerts as chargeAlerts lists them, oldest first. */
async function listed(token: string): Promise<Resumed[]> {
  return [...expectData(await stack.gql<{ chargeAlerts: Resumed[] }>(MY_ALERTS, {}, token)).chargeAlerts].reverse();
}

describe('resuming by cursor', () => {
  it('every alert carries an opaque cursor, the same on the subscription and in chargeAlerts', async () => {
    const sub = subscribe(stack, bob, RESUME);
    try {
      await waitForLive(stack, 1);
      const purchase = await flagged(bob, 'acc_bob_card');
      const [alert] = await take(sub, 1);
      expect(alert!.purchase.id).toBe(purchase);
      expect(alert!.cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect((await listed(bob)).find((a) => a.id === alert!.id)?.cursor).toBe(alert!.cursor);
    } finally {
      await sub.dispose();
    }
  });

  it('replays, in order and once each, the alerts committed after the cursor, then goes live without a duplicate', async () => {
    const last = (await listed(bob)).at(-1)!;
    // Missed while disconnected: three alerts.
    const missed = [await flagged(bob, 'acc_bob_card'), await flagged(bob, 'acc_bob_card'), await flagged(bob, 'acc_bob_card')];
    const sub = subscribe(stack, bob, RESUME, { after: last.cursor });
    try {
      expect((await take(sub, 3)).map((a) => a.purchase.id)).toEqual(missed);
      // Then live: the next alert is the next one, not a repeat of the replay.
      const live = await flagged(bob, 'acc_bob_card');
      expect((await take(sub, 1)).map((a) => a.purchase.id)).toEqual([live]);
      expect(sub.pending()).toBe(0);
    } finally {
      await sub.dispose();
    }
  });

  it('a resumption racing a burst of purchases gets every alert of the burst exactly once, in commit order', async () => {
    const last = (await listed(bob)).at(-1)!;
    const burst: string[] = [];
    let subscribed: LiveSubscription | null = null;
    try {
      // The subscription starts in the middle of the burst: some alerts are replayed, some arrive live.
      for (let i = 0; i < 8; i++) {
        if (i === 3) subscribed = subscribe(stack, bob, RESUME, { after: last.cursor });
        burst.push(await flagged(bob, 'acc_bob_card'));
      }
      const got = await take(subscribed!, burst.length);
      expect(got.map((a) => a.purchase.id)).toEqual(burst);
      // In commit order: the order chargeAlerts lists them in, with the same cursors.
      const committed = (await listed(bob)).slice(-burst.length);
      expect(got).toEqual(committed);
      const after = await flagged(bob, 'acc_bob_card');
      expect((await take(subscribed!, 1)).map((a) => a.purchase.id)).toEqual([after]);
    } finally {
      await subscribed?.dispose();
    }
  });
});

describe('bounded replay', () => {
  const ended = async (token: string, after: string) => {
    const sub = subscribe(stack, token, RESUME, { after });
    try {
      return subscriptionErrors(await sub.next());
    } finally {
      await sub.dispose();
    }
  };

  it('refuses a cursor older than 7 days with CURSOR_EXPIRED', async () => {
    const old = encodeCursor({ at: new Date(Date.now() - 8 * 24 * 3600 * 1000).toISOString(), id: 1 });
    const [error] = await ended(bob, old);
    expect(error!.extensions?.code).toBe('CURSOR_EXPIRED');
    expect(error!.message).toMatch(/7 days/);
  });

  it(`refuses a cursor followed by more than ${REPLAY_MAX_ALERTS} alerts with CURSOR_EXPIRED`, async () => {
    const user = `usr_bounds_${randomUUID().slice(0, 8)}`;
    const now = new Date().toISOString();
    const rows = Array.from({ length: REPLAY_MAX_ALERTS + 1 }, (_, i) => ({
      id: `alt_bounds_${user}_${i}`,
      user_id: user,
      account_id: 'acc_none',
      purchase_id: `pur_bounds_${user}_${i}`,
      status: 'OPEN',
      risk_score: 60,
      reasons: '["VELOCITY"]',
      created_at: now,
      event_id: 50_000_000 + i,
      resolved_at: null,
    }));
    const db = stack.adminDb('alerts');
    for (let i = 0; i < rows.length; i += 200) await db('charge_alerts').insert(rows.slice(i, i + 200));
    const token = await signToken(TEST_JWT_SECRET, user, 'payments');
    const [error] = await ended(token, encodeCursor({ at: now, id: 0 }));
    expect(error!.extensions?.code).toBe('CURSOR_EXPIRED');
    // One alert later, the cursor is within the bound again: exactly REPLAY_MAX_ALERTS are replayed.
    const within = subscribe(stack, token, 'subscription ($after: String) { chargeAlertRaised(after: $after) { id } }', {
      after: encodeCursor({ at: now, id: 50_000_000 }),
    });
    try {
      for (let i = 1; i <= REPLAY_MAX_ALERTS; i++) expect(raisedAlert<{ id: string }>(await within.next()).id).toBe(rows[i]!.id);
    } finally {
      await within.dispose();
    }
  });

  it('refuses a cursor that is not one with BAD_USER_INPUT', async () => {
    const [error] = await ended(bob, 'not a cursor!');
    expect(error!.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('subscriptions per user', () => {
  it(`a user holds at most ${MAX_PER_USER} subscriptions at once on a gateway, over all their connections (TOO_MANY_SUBSCRIPTIONS)`, async () => {
    const dave = await stack.token('dave');
    const before = stack.gateway.subscriptions.live;
    const held = Array.from({ length: MAX_PER_USER }, () => subscribe(stack, dave, RESUME));
    try {
      await waitForLive(stack, before + MAX_PER_USER);
      const refused = subscribe(stack, dave, RESUME);
      const [error] = subscriptionErrors(await refused.next());
      await refused.dispose();
      expect(error!.extensions?.code).toBe('TOO_MANY_SUBSCRIPTIONS');
      expect(error!.message).toMatch(new RegExp(`At most ${MAX_PER_USER} subscriptions per user`));
      // Another user is not affected.
      const other = subscribe(stack, bob, RESUME);
      await waitForLive(stack, before + MAX_PER_USER + 1);
      await other.dispose();
      // Ending one frees its place.
      await held.pop()!.dispose();
      await waitFor(() => stack.gateway.subscriptions.active === before + MAX_PER_USER - 1, 'the ended subscription to be released');
      held.push(subscribe(stack, dave, RESUME));
      await waitForLive(stack, before + MAX_PER_USER);
    } finally {
      await Promise.all(held.map((s) => s.dispose()));
    }
  });
});

describe('token expiry', () => {
  it('ends each subscription with UNAUTHENTICATED at expiry, closes 4403, and the client resumes with a new token by cursor', async () => {
    const carol = await stack.token('carol');
    await warmUp(stack, carol, 'acc_carol_card');
    // A token valid for 3 more seconds (JWT times are whole seconds).
    const short = await signToken(TEST_JWT_SECRET, userId('carol'), 'payments', Math.floor(Date.now() / 1000) + 3);
    const before = stack.gateway.subscriptions.live;
    const first = subscribe(stack, short, RESUME);
    const second = subscribe(stack, short, RESUME);
    const closed = new Promise<number | undefined>((resolve) => first.client.on('closed', (e) => resolve((e as { code?: number }).code)));
    let resumed: LiveSubscription | null = null;
    try {
      await waitForLive(stack, before + 2);
      const seen = await flagged(carol, 'acc_carol_card');
      const [alert] = await take(first, 1);
      expect(alert!.purchase.id).toBe(seen);
      expect((await take(second, 1))[0]!.purchase.id).toBe(seen);
      // At expiry: each subscription ends with UNAUTHENTICATED, then the socket closes with 4403.
      for (const sub of [first, second]) {
        const [error] = subscriptionErrors(await sub.next(10_000));
        expect(error!.extensions?.code).toBe('UNAUTHENTICATED');
        expect(error!.message).toMatch(/expired/);
      }
      expect(await closed).toBe(4403);
      await waitFor(() => stack.gateway.subscriptions.active === before, 'the expired subscriptions to be released');
      // Raised while the client has no connection.
      const missed = await flagged(carol, 'acc_carol_card');
      // A new token, a new connection, resumed by the last cursor: the missed alert, once, then live.
      resumed = subscribe(stack, carol, RESUME, { after: alert!.cursor });
      expect((await take(resumed, 1)).map((a) => a.purchase.id)).toEqual([missed]);
      const live = await flagged(carol, 'acc_carol_card');
      expect((await take(resumed, 1)).map((a) => a.purchase.id)).toEqual([live]);
    } finally {
      await Promise.all([first.dispose(), second.dispose(), resumed?.dispose()]);
    }
  });

  it('closes a connection with 4403 at expiry even when it holds no subscription', async () => {
    const short = await signToken(TEST_JWT_SECRET, userId('carol'), 'payments', Math.floor(Date.now() / 1000) + 2);
    const client = createClient({
      url: stack.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${short}` },
      onNonLazyError: () => {},
    });
    try {
      const code = await new Promise<number | undefined>((resolve) => client.on('closed', (e) => resolve((e as { code?: number }).code)));
      expect(code).toBe(4403);
    } finally {
      await client.dispose();
    }
  });
});

describe('configuration', () => {
  const config = (value?: string) =>
    loadConfig(
      { PAYGRAPH_DATA_DIR: '/nonexistent-paygraph', ...(value === undefined ? {} : { PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER: value }) },
      { tokens: false },
    );

  it('PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER defaults to 10 and must be an integer >= 1', () => {
    expect(config().maxSubscriptionsPerUser).toBe(DEFAULT_MAX_SUBSCRIPTIONS_PER_USER);
    expect(DEFAULT_MAX_SUBSCRIPTIONS_PER_USER).toBe(10);
    expect(config('25').maxSubscriptionsPerUser).toBe(25);
    for (const bad of ['0', '-1', '2.5', 'ten']) expect(() => config(bad), bad).toThrow(/PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER must be an integer >= 1/);
  });
});
