/**
 * The signed alert bus (subgraphs/alerts/bus.ts): whoever can publish on the bus's Redis channel
 * (a hostile operator with a raw Redis client) cannot make an alert reach a subscriber, nor
 * suppress a genuine one. Messages without the alerts service's signature, with another key's,
 * stale ones and replays are dropped and logged; a genuine alert raised afterwards still arrives.
 *
 * Needs Redis: REDIS_URL or PAYGRAPH_TEST_REDIS_URL; skipped without.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsServices } from '../../subgraphs/alerts/services.js';
import { signBusMessage, type BusMessage } from '../../subgraphs/alerts/bus.js';
import type { ChargeAlertRow } from '../../subgraphs/alerts/data.js';
import { op } from '../helpers/contract.js';
import { LogCapture } from '../helpers/logs.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { pay, raisedAlert, subscribe, SUSPICIOUS, waitForLive } from '../helpers/alerts.js';
import { waitFor } from '../helpers/wait.js';

const redisUrl = process.env.REDIS_URL || process.env.PAYGRAPH_TEST_REDIS_URL || undefined;

describe.skipIf(!redisUrl)('the alert bus is signed (needs REDIS_URL or PAYGRAPH_TEST_REDIS_URL; skipped without)', () => {
  let stack: TestStack;
  let raw: Redis;
  let alice: string;
  const logs = new LogCapture();
  const bus = () => (stack.subgraphs.alerts.services as AlertsServices).bus;
  const refusals = () => logs.records().filter((r) => r.msg === 'refused a message on the alert bus');

  /** An alert for alice that no purchase raised, far ahead of every event id (it would hide the next real alerts). */
  const forgedAlert = (): ChargeAlertRow => ({
    id: `alr_${randomUUID()}`,
    userId: 'usr_alice',
    accountId: 'acc_alice_card',
    purchaseId: `pur_${randomUUID()}`,
    status: 'OPEN',
    riskScore: 99,
    reasons: ['FORGED'],
    createdAt: new Date().toISOString(),
    eventId: 1_000_000_000,
    resolvedAt: null,
  });

  beforeAll(async () => {
    stack = await startTestStack({ redisUrl, logDestination: logs, logLevel: 'warn' });
    alice = await stack.token('alice');
    expect(bus().distributed).toBe(true);
    raw = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    raw?.disconnect();
    await stack?.stop();
  });

  it('drops forged messages (no signature, a wrong one, another key, stale, replayed), logs them, and still delivers the genuine alert', async () => {
    const sub = subscribe(stack, alice, op('ChargeAlerts'));
    try {
      await waitForLive(stack, 1);
      const channel = bus().channelName;
      expect(channel).toMatch(/^paygraph:alerts:[0-9a-f]{16}:bus$/);
      const message = (alert: ChargeAlertRow, sentAt = Date.now()): BusMessage => ({ origin: randomUUID(), sentAt, alert });

      // The old, unsigned format, and a signed envelope without its signature.
      await raw.publish(channel, JSON.stringify({ origin: randomUUID(), alert: forgedAlert() }));
      await raw.publish(channel, JSON.stringify({ message: JSON.stringify(message(forgedAlert())) }));
      // A garbage signature, and a valid one by another service's key (ads).
      await raw.publish(channel, JSON.stringify({ message: JSON.stringify(message(forgedAlert())), signature: Buffer.alloc(64, 7).toString('base64') }));
      await raw.publish(channel, signBusMessage(stack.keys.ads, channel, message(forgedAlert())));
      // The alerts key, but signed for another channel.
      await raw.publish(channel, signBusMessage(stack.keys.alerts, `${channel}x`, message(forgedAlert())));
      // The alerts key, but ten minutes old.
      await raw.publish(channel, signBusMessage(stack.keys.alerts, channel, message(forgedAlert(), Date.now() - 600_000)));
      // Not JSON at all.
      await raw.publish(channel, 'not json');

      await waitFor(() => Object.values(bus().refusedCounts()).reduce((n, c) => n + (c ?? 0), 0) >= 7, 'the bus to refuse every forged message');
      expect(bus().refusedCounts()).toEqual({ unsigned: 2, 'bad-signature': 3, stale: 1, malformed: 1 });
      expect(sub.pending()).toBe(0);

      // A genuine alert still arrives, and is the next (and only) message.
      const made = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
      const got = raisedAlert(await sub.next());
      expect(got.purchase.id).toBe(made.purchase!.id);

      // The genuine alert, re-sent over the bus by "another process" with the alerts key: a replay.
      const genuine = (await stack.dbs.alerts('charge_alerts').where({ purchase_id: made.purchase!.id }).first()) as { id: string };
      const replayed = forgedAlert();
      replayed.id = genuine.id;
      replayed.purchaseId = made.purchase!.id;
      const replay = signBusMessage(stack.keys.alerts, channel, message(replayed));
      await raw.publish(channel, replay);
      await raw.publish(channel, replay);
      await waitFor(() => (bus().refusedCounts().replay ?? 0) >= 2, 'the bus to refuse the replays');
      await new Promise((r) => setTimeout(r, 200));
      expect(sub.pending()).toBe(0);

      // Logged through the alerts service's logger, once per kind (the second of a kind within a minute is counted, not logged).
      const logged = refusals();
      expect(logged.map((r) => r.refusal).sort()).toEqual(['bad-signature', 'malformed', 'replay', 'stale', 'unsigned']);
      for (const r of logged) {
        expect(r.service).toBe('alerts');
        expect(r.level).toBe(40);
        expect(r.channel).toBe(channel);
      }
      // No forged content reached the logs.
      expect(logs.lines.join('\n')).not.toContain('FORGED');
    } finally {
      await sub.dispose();
    }
  });
});
