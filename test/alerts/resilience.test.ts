/**
 * Resilience of charge alerts, with SQLite files in a temporary directory so that databases
 * survive a service restart: the alerts service down during a purchase (the alert still arrives,
 * once, on the same client subscription), and the payments service down when a charge is denied
 * (the freeze is delivered when it is back).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { op } from '../helpers/contract.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { NORMAL, pay, raisedAlert, subscribe, SUSPICIOUS, waitForLive, type LiveSubscription } from '../helpers/alerts.js';
import { expectUserErrors } from '../helpers/matchers.js';
import { waitFor } from '../helpers/wait.js';

let stack: TestStack;
let dataDir: string;
let alice: string;
beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-alerts-'));
  stack = await startTestStack({ dataDir, logLevel: 'warn' });
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('alerts service restart', () => {
  let sub: LiveSubscription;
  beforeAll(async () => {
    sub = subscribe(stack, alice, op('ChargeAlerts'));
    await waitForLive(stack, 1);
  });
  afterAll(async () => {
    await sub?.dispose();
  });

  it('a purchase made while alerts is down raises its alert when it is back, once, on the same subscription', async () => {
    await stack.stopSubgraph('alerts');
    // The bridge noticed the upstream is gone (and is reconnecting); the client subscription stays open.
    await waitFor(() => stack.gateway.subscriptions.live === 0, 'the bridge to lose its upstream');
    expect(stack.gateway.subscriptions.active).toBe(1);

    const during = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    expect(during.userErrors).toEqual([]);
    const purchaseId = during.purchase!.id;

    await stack.startSubgraph('alerts');
    const first = raisedAlert(await sub.next(30_000));
    expect(first.purchase.id).toBe(purchaseId);
    expect(first.purchase.merchant.name).toBe('Air France');

    // Once: one alert row for the purchase, and the next event on the stream is a new purchase's.
    const rows = await stack.dbs.alerts('charge_alerts').where({ purchase_id: purchaseId });
    expect(rows).toHaveLength(1);
    const after = await pay(stack, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
    const second = raisedAlert(await sub.next());
    expect(second.purchase.id).toBe(after.purchase!.id);
    expect(sub.pending()).toBe(0);

    // The consumer resumed from its stored position: every event processed, exactly once.
    const position = Number((await stack.dbs.alerts('consumer_positions').where({ feed: 'payments' }).first()).position);
    const lastEvent = Number((await stack.dbs.payments('outbox_events').max({ id: 'id' }).first())!.id);
    await waitFor(
      async () => Number((await stack.dbs.alerts('consumer_positions').where({ feed: 'payments' }).first()).position) >= lastEvent,
      'the consumer to catch up',
    );
    expect(position).toBeLessThanOrEqual(lastEvent);
    const history = await stack.dbs.alerts('purchase_history').count({ n: '*' }).first();
    const events = await stack.dbs.payments('outbox_events').where({ event_type: 'PURCHASE_POSTED' }).count({ n: '*' }).first();
    expect(Number(history!.n)).toBe(Number(events!.n));
  });

  it('restarting alerts again with no new events delivers no duplicate', async () => {
    await stack.restartSubgraph('alerts');
    await waitForLive(stack, 1);
    const next = await pay(stack, alice, { accountId: 'acc_alice_checking', ...SUSPICIOUS });
    const m = raisedAlert(await sub.next(30_000));
    expect(m.purchase.id).toBe(next.purchase!.id);
  });
});

describe('payments service down when a charge is denied', () => {
  it('the freeze is delivered when payments is back, and the card refuses purchases', async () => {
    await waitFor(() => stack.gateway.subscriptions.active === 0, 'the previous subscription to end');
    const sub = subscribe(stack, alice, op('ChargeAlerts'));
    await waitForLive(stack, 1);
    const p = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    let alertId = '';
    for (;;) {
      const a = raisedAlert(await sub.next());
      if (a.purchase.id === p.purchase!.id) {
        alertId = a.id;
        break;
      }
    }
    await sub.dispose();

    await stack.stopSubgraph('payments');
    const res = await stack.gql<{ resolveChargeAlert: { alert: { status: string } | null; userErrors: unknown[] } }>(
      op('ResolveAlert'),
      { id: alertId, fraudulent: true },
      alice,
    );
    expect(res.data!.resolveChargeAlert).toEqual({ alert: { id: alertId, status: 'CONFIRMED_FRAUD' }, userErrors: [] });
    // The dispatcher tries, fails and keeps the command pending.
    await waitFor(async () => {
      const cmd = await stack.dbs.alerts('freeze_commands').where({ alert_id: alertId }).first();
      return cmd !== undefined && cmd.status === 'PENDING' && Number(cmd.attempts) >= 1;
    }, 'a failed delivery attempt');

    await stack.startSubgraph('payments');
    await waitFor(
      async () => (await stack.dbs.alerts('freeze_commands').where({ alert_id: alertId, status: 'DELIVERED' }).first()) !== undefined,
      'the freeze to be delivered',
      30_000,
    );
    const refused = await pay(stack, alice, { accountId: 'acc_alice_card', ...NORMAL });
    expectUserErrors(refused, ['ACCOUNT_FROZEN']);
  });
});
