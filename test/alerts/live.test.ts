/**
 * Charge alerts end to end through the gateway, with a real graphql-ws client: the ChargeAlerts
 * subscription (rules, joins, per-user delivery, fence, auth), MyAlerts and ResolveAlert (freeze).
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signConnectionInit } from '../../lib/transport/signing.js';
import { op } from '../helpers/contract.js';
import { signerOf } from '../helpers/signing.js';
import { startTestStack, userId, type TestStack } from '../helpers/stack.js';
import {
  alertsStatus,
  closeCode,
  connectAlertsDirect,
  grantExtensions,
  NORMAL,
  pay,
  raisedAlert,
  subscribe,
  subscriptionErrors,
  SUSPICIOUS,
  waitForLive,
  type LiveSubscription,
  wsUrlOf,
  type RaisedAlert,
} from '../helpers/alerts.js';
import { expectData, expectUnseen, expectGraphQLError, expectUserErrors } from '../helpers/matchers.js';
import { waitFor } from '../helpers/wait.js';

let stack: TestStack;
let alice: string;
let bob: string;
beforeAll(async () => {
  stack = await startTestStack({ logLevel: 'warn' });
  alice = await stack.token('alice');
  bob = await stack.token('bob');
});
afterAll(async () => {
  await stack?.stop();
});

describe('connection and fence', () => {
  it('rejects a connection_init with an invalid token with 4403 (graphql-ws: Forbidden)', async () => {
    const sub = subscribe(stack, 'not-a-jwt', op('ChargeAlerts'));
    expect(closeCode(await sub.next())).toBe(4403);
    await sub.dispose();
  });

  it('rejects a connection_init without a token with 4403', async () => {
    const sub = subscribe(stack, null, op('ChargeAlerts'));
    const m = await sub.next();
    expect(closeCode(m)).toBe(4403);
    expect((m as { error: { reason?: string } }).error.reason).toMatch(/Bearer/);
    await sub.dispose();
  });

  it('closes a socket that subscribes before its connection is acknowledged with 4401 (graphql-ws: Unauthorized)', async () => {
    const socket = new WebSocket(wsUrlOf(stack.url), 'graphql-transport-ws');
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: op('ChargeAlerts') } }));
    expect(await closed).toBe(4401);
  });

  it('refuses an advertising caller as if there were no subscriptions, before any subgraph', async () => {
    const ads = await stack.token('alice', 'advertising');
    const sub = subscribe(stack, ads, op('ChargeAlerts'));
    expectUnseen(subscriptionErrors(await sub.next()));
    expect(stack.gateway.subscriptions.active).toBe(0);
    await sub.dispose();
  });

  it('refuses queries over WebSocket and invalid subscriptions', async () => {
    const q = subscribe(stack, alice, '{ merchants(first: 1) { id } }');
    expect((await q.next()).kind).toBe('error');
    await q.dispose();
    const bad = subscribe(stack, alice, 'subscription { chargeAlertRaised { reason } }');
    const errors = subscriptionErrors(await bad.next());
    expect(errors[0]!.message).toContain('Cannot query field "reason"');
    expect(errors[0]!.message).not.toContain('Did you mean'); // no schema hints (as on HTTP)
    await bad.dispose();
  });

  it('answers a subscription sent over HTTP with a clear 400 pointing to WebSocket', async () => {
    const res = await stack.gql(op('ChargeAlerts'), {}, alice);
    expect(expectGraphQLError(res, 'BAD_REQUEST', { status: 400 }).message).toMatch(/WebSocket/);
  });
});

describe('the alerts service endpoint', () => {
  const caller = { userId: userId('alice'), purpose: 'payments' as const, client: null };
  const query = 'subscription { chargeAlertRaised { id riskScore } }';

  it('accepts only connections signed by the gateway with its key (4403 otherwise)', async () => {
    expect((await connectAlertsDirect(stack, {})).code).toBe(4403);
    const gateway = signerOf('gateway');
    // Signed with the ads service's own key: a subgraph cannot forge the gateway's connection.
    const refused = await connectAlertsDirect(stack, await signConnectionInit(signerOf('ads'), 'alerts'));
    expect(refused.code).toBe(4403);
    expect(refused.reason).toMatch(/ads may not call/);
    // A captured, valid connection_init cannot be replayed.
    const valid = await signConnectionInit(gateway, 'alerts');
    const first = createClient({
      url: stack.subgraphs.alerts.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: valid,
    });
    await new Promise<void>((resolve) => first.on('connected', () => resolve()));
    await first.dispose();
    expect((await connectAlertsDirect(stack, valid)).reason).toMatch(/replayed/);
  });

  it("serves a subscription on the gateway's connection only with a grant the gateway signed for that caller and that operation", async () => {
    const gateway = signerOf('gateway');
    const socket = async () => signConnectionInit(gateway, 'alerts');
    const refusal = async (extensions?: Record<string, unknown>) => {
      const r = await connectAlertsDirect(stack, await socket(), { query, ...(extensions ? { extensions } : {}) });
      expect(r.code, JSON.stringify(r)).toBeUndefined();
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(r)).toBe('FORBIDDEN');
      return r.errors![0]!.message;
    };
    expect(await refusal()).toMatch(/not granted by the gateway \(unsigned/);
    // Signed by ads: refused. Signed by the gateway for ads: refused.
    expect(await refusal(await grantExtensions(signerOf('ads'), caller, { query }))).toMatch(/ads may not call/);
    expect(await refusal(await grantExtensions(gateway, caller, { query }, 'ads'))).toMatch(/signed for "ads"/);
    // A grant for another operation, or another resume position, does not cover this one.
    expect(await refusal(await grantExtensions(gateway, caller, { query: 'subscription { chargeAlertRaised { id } }' }))).toMatch(/content digest/);
    const tampered = await grantExtensions(gateway, caller, { query, resumeAfter: 5 });
    (tampered.paygraphGrant as Record<string, unknown>).resumeAfter = 0;
    expect(await refusal(tampered)).toMatch(/content digest/);
    // A grant is good for one subscription: replayed, it is refused.
    const once = await grantExtensions(gateway, caller, { query });
    const client = createClient({
      url: stack.subgraphs.alerts.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: await socket(),
    });
    const errors: unknown[] = [];
    client.subscribe({ query, extensions: once }, { next: () => {}, error: (e) => errors.push(e), complete: () => {} });
    await waitFor(async () => (await alertsStatus(stack)).bus.subscriptions >= 1, 'the granted subscription to be streaming');
    expect(errors).toEqual([]);
    expect(await refusal(once)).toMatch(/replayed/);
    await client.dispose();
  });
});

describe('ChargeAlerts subscription', () => {
  let aliceSub: LiveSubscription;
  let bobSub: LiveSubscription;
  let aliceAlert: RaisedAlert;
  let bobAlert: RaisedAlert;
  let normalPurchaseId: string;
  let suspiciousPurchaseId: string;

  beforeAll(async () => {
    aliceSub = subscribe(stack, alice, op('ChargeAlerts'));
    bobSub = subscribe(stack, bob, op('ChargeAlerts'));
    await waitForLive(stack, 2);
  });
  afterAll(async () => {
    await aliceSub?.dispose();
    await bobSub?.dispose();
  });

  it('a normal purchase raises nothing; a suspicious one reaches its owner with reasons and the joined merchant', async () => {
    const normal = await pay(stack, alice, { accountId: 'acc_alice_card', ...NORMAL });
    expect(normal.userErrors).toEqual([]);
    normalPurchaseId = normal.purchase!.id;
    const suspicious = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    expect(suspicious.userErrors).toEqual([]);
    suspiciousPurchaseId = suspicious.purchase!.id;

    // The first event alice gets is the suspicious purchase's: the normal one raised nothing.
    aliceAlert = raisedAlert(await aliceSub.next());
    expect(aliceAlert.purchase.id).toBe(suspiciousPurchaseId);
    expect(aliceAlert.reasons).toEqual(expect.arrayContaining(['AMOUNT_ANOMALY', 'FOREIGN_MERCHANT']));
    expect(aliceAlert.riskScore).toBeGreaterThanOrEqual(50);
    expect(aliceAlert.riskScore).toBeLessThanOrEqual(100);
    expect(aliceAlert.purchase.amount).toEqual({ amount: '1200.00', currency: 'USD' });
    expect(aliceAlert.purchase.merchant).toEqual({ id: 'mer_air_france', name: 'Air France', country: 'FR' });
    expect(aliceAlert.account).toEqual({ id: 'acc_alice_card' });
    expect(Number.isNaN(Date.parse(aliceAlert.createdAt))).toBe(false);
  });

  it("another user's subscription gets nothing of it: bob's first event is his own alert", async () => {
    const own = await pay(stack, bob, { accountId: 'acc_bob_checking', ...SUSPICIOUS });
    expect(own.userErrors).toEqual([]);
    bobAlert = raisedAlert(await bobSub.next());
    expect(bobAlert.purchase.id).toBe(own.purchase!.id);
    expect(bobAlert.account.id).toBe('acc_bob_checking');
    // And alice did not get bob's: her stream has nothing pending after bob's event was delivered.
    expect(aliceSub.pending()).toBe(0);
  });

  it('MyAlerts lists the alert with the purchase joined, and nothing for the normal purchase', async () => {
    const res = await stack.gql<{
      chargeAlerts: {
        id: string;
        status: string;
        riskScore: number;
        reasons: string[];
        purchase: { id: string; amount: { amount: string }; merchant: { name: string; country: string } };
        account: { id: string; displayName: string };
      }[];
    }>(op('MyAlerts'), {}, alice);
    expect(res.errors).toBeUndefined();
    const list = res.data!.chargeAlerts;
    const mine = list.find((a) => a.id === aliceAlert.id);
    expect(mine).toMatchObject({
      status: 'OPEN',
      riskScore: aliceAlert.riskScore,
      reasons: aliceAlert.reasons,
      purchase: { id: suspiciousPurchaseId, amount: { amount: '1200.00' }, merchant: { name: 'Air France', country: 'FR' } },
      account: { id: 'acc_alice_card' },
    });
    expect(mine!.account.displayName).toBeTruthy();
    expect(list.some((a) => a.purchase.id === normalPurchaseId)).toBe(false);
    expect(list.some((a) => a.id === bobAlert.id)).toBe(false);
  });

  it('resolveChargeAlert: only the owner, once; denying the charge freezes the card', async () => {
    const resolve = (id: string, fraudulent: boolean, token: string) =>
      stack.gql<{
        resolveChargeAlert: { alert: { id: string; status: string } | null; userErrors: { code: string; field: string[] | null; message: string }[] };
      }>(op('ResolveAlert'), { id, fraudulent }, token);

    const stranger = await resolve(aliceAlert.id, true, bob);
    expectUserErrors(expectData(stranger).resolveChargeAlert, ['NOT_FOUND'], { field: ['id'] });

    const denied = await resolve(aliceAlert.id, true, alice);
    expect(denied.data!.resolveChargeAlert).toEqual({ alert: { id: aliceAlert.id, status: 'CONFIRMED_FRAUD' }, userErrors: [] });

    const again = await resolve(aliceAlert.id, false, alice);
    expectUserErrors(expectData(again).resolveChargeAlert, ['ALERT_ALREADY_RESOLVED']);

    // The freeze is delivered to payments by the dispatcher (at least once): wait for it.
    await waitFor(
      async () => (await stack.dbs.alerts('freeze_commands').where({ alert_id: aliceAlert.id, status: 'DELIVERED' }).first()) !== undefined,
      'the freeze to be delivered',
    );
    expectUserErrors(await pay(stack, alice, { accountId: 'acc_alice_card', ...NORMAL }), ['ACCOUNT_FROZEN']);
    // Alice's other account is not frozen.
    const checking = await pay(stack, alice, { accountId: 'acc_alice_checking', ...NORMAL });
    expect(checking.userErrors).toEqual([]);

    // Recognising a charge just closes the alert.
    const ok = await resolve(bobAlert.id, false, bob);
    expect(ok.data!.resolveChargeAlert).toEqual({ alert: { id: bobAlert.id, status: 'CONFIRMED_LEGITIMATE' }, userErrors: [] });
    expect(await stack.dbs.alerts('freeze_commands').where({ alert_id: bobAlert.id }).first()).toBeUndefined();
    const bobPays = await pay(stack, bob, { accountId: 'acc_bob_checking', ...NORMAL });
    expect(bobPays.userErrors).toEqual([]);
  });

  it('a purchase made right after subscribing, before the upstream is set up, still reaches the subscription', async () => {
    // Wait for the gateway connection only (what a real client knows), not for the upstream.
    await waitFor(() => stack.gateway.subscriptions.active === 2, 'only the two long-lived subscriptions');
    const carol = await stack.token('carol');
    const sub = subscribe(stack, carol, op('ChargeAlerts'));
    await new Promise<void>((resolve) => {
      const off = sub.client.on('connected', () => {
        off();
        resolve();
      });
    });
    const p = await pay(stack, carol, { accountId: 'acc_carol_card', ...SUSPICIOUS });
    expect(p.userErrors).toEqual([]);
    const a = raisedAlert(await sub.next());
    expect(a.purchase.id).toBe(p.purchase!.id);
    await sub.dispose();
  });

  it('an anonymous caller cannot resolve alerts', async () => {
    const res = await stack.gql(op('ResolveAlert'), { id: aliceAlert.id, fraudulent: true }, null);
    expectUnseen(res);
  });
});
