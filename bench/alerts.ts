/**
 * Alert latency: time from a purchase's commit (its createdAt) to receipt by graphql-ws
 * subscribers through the gateway, with 1 and with 100 subscribers, and how many were lost.
 *
 * Every measured purchase is deterministically suspicious: a 1.00 card-not-present charge at a
 * foreign merchant (FOREIGN_MERCHANT, 25) made after at least VELOCITY_MAX_CHARGES - 1 earlier
 * charges within the velocity window (VELOCITY, 30): 55 >= ALERT_THRESHOLD, whatever the hour.
 * The warm-up charges that build that velocity are made before the subscribers connect and are
 * awaited until the consumer has processed them (so their alerts do not load the measured fan-out);
 * then one more flagged purchase is delivered untimed (warming the delivery path). "Lost" counts
 * deliveries missing for purchases that did raise an alert (an alert row exists); a measured
 * purchase that raised none is reported as `unflagged` (a bench bug, not a loss).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { signToken } from '../lib/auth.js';
import type { Stack } from '../runtime/stack.js';
import { VELOCITY_MAX_CHARGES } from '../subgraphs/alerts/rules.js';

const SUBSCRIPTION = 'subscription { chargeAlertRaised { id purchase { id merchant { name } } } }';
const PAY = 'mutation Pay($input: MakePurchaseInput!) { makePurchase(input: $input) { purchase { id createdAt } userErrors { code message } } }';

export interface LatencyStats {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
}

export function summarize(values: number[]): LatencyStats {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
  return { p50: at(50), p95: at(95), p99: at(99), samples: s.length };
}

/** How long to wait for every subscriber to receive one purchase's alert. */
const RECEIVE_TIMEOUT_MS = 5_000;

/** A 1.00 card-not-present charge at a foreign merchant (Air France, FR; alice is US). */
function foreignCharge(tag: string) {
  return {
    accountId: 'acc_alice_card',
    merchantId: 'mer_air_france',
    amount: { amount: '1.00', currency: 'USD' },
    description: 'bench',
    idempotencyKey: `bench-alert-${process.pid}-${Date.now()}-${tag}`,
    cardPresent: false,
  };
}

async function purchase(stack: Stack, token: string, tag: string): Promise<{ id: string; createdAt: string }> {
  const res = await fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: PAY, variables: { input: foreignCharge(tag) } }),
  });
  const body = (await res.json()) as { data?: { makePurchase: { purchase: { id: string; createdAt: string } | null } } };
  const p = body.data?.makePurchase.purchase;
  if (!p) throw new Error(`purchase failed: ${JSON.stringify(body).slice(0, 300)}`);
  return p;
}

/**
 * `subscribers` graphql-ws subscribers of alice's alerts, then `samples` flagged purchases timed to
 * every subscriber's receipt. `whileIdle` runs once every subscription is live and before any
 * measured purchase (the scale bench reads memory per idle subscription there).
 */
export async function alertRun(
  stack: Stack,
  token: string,
  subscribers: number,
  samples: number,
  whileIdle?: () => void,
): Promise<{ latencies: number[]; lost: number; unflagged: number }> {
  const wsUrl = stack.url.replace(/^http/, 'ws');
  const clients: Client[] = [];
  const waiters = new Map<string, { remaining: number; done: () => void }>();
  const received = new Map<string, number[]>();
  const latencies: number[] = [];
  // Untimed warm-up, before anyone subscribes: enough recent charges that every later one trips
  // VELOCITY, processed by the consumer before the subscriptions start.
  const warmups: string[] = [];
  for (let i = 0; i < VELOCITY_MAX_CHARGES - 1; i++) warmups.push((await purchase(stack, token, `warmup-${subscribers}-${i}`)).id);
  const deadline = Date.now() + RECEIVE_TIMEOUT_MS;
  while (
    Number(((await stack.dbs.alerts('purchase_history').whereIn('purchase_id', warmups).count({ n: '*' }).first()) as { n: number | string }).n) <
    warmups.length
  ) {
    if (Date.now() > deadline) throw new Error('the alerts consumer did not process the warm-up purchases');
    await new Promise((r) => setTimeout(r, 10));
  }
  let ready = 0;
  const allReady = new Promise<void>((resolve) => {
    for (let s = 0; s < subscribers; s++) {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
      clients.push(client);
      client.on('connected', () => {
        ready += 1;
        if (ready === subscribers) resolve();
      });
      client.subscribe<{ chargeAlertRaised: { purchase: { id: string } } }>(
        { query: SUBSCRIPTION },
        {
          next: (msg) => {
            const id = msg.data?.chargeAlertRaised.purchase.id;
            if (!id) return;
            const at = Date.now();
            const list = received.get(id) ?? [];
            list.push(at);
            received.set(id, list);
            const w = waiters.get(id);
            if (w && --w.remaining === 0) w.done();
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    }
  });
  await allReady;
  // ...and until the gateway's upstream subscriptions are established (an alert raised before a
  // subscribe message reached the gateway is, rightly, not that subscription's).
  const live = Date.now() + RECEIVE_TIMEOUT_MS;
  while (stack.gateway.subscriptions.live < subscribers) {
    if (Date.now() > live) throw new Error(`only ${stack.gateway.subscriptions.live} of ${subscribers} subscriptions went live`);
    await new Promise((r) => setTimeout(r, 10));
  }
  whileIdle?.();
  let lost = 0;
  let unflagged = 0;
  try {
    // i = -1: the untimed warm-up of the delivery path.
    for (let i = -1; i < samples; i++) {
      const p = await purchase(stack, token, `${subscribers}-${i}`);
      const committed = Date.parse(p.createdAt);
      await new Promise<void>((resolve) => {
        const already = received.get(p.id)?.length ?? 0;
        if (already >= subscribers) return resolve();
        const timer = setTimeout(resolve, RECEIVE_TIMEOUT_MS);
        waiters.set(p.id, { remaining: subscribers - already, done: () => (clearTimeout(timer), resolve()) });
      });
      const got = received.get(p.id) ?? [];
      if (i < 0) continue;
      if (got.length < subscribers) {
        const alert = await stack.dbs.alerts('charge_alerts').select('id').where('purchase_id', p.id).first();
        if (alert) lost += subscribers - got.length;
        else unflagged += 1;
      }
      for (const t of got) latencies.push(t - committed);
    }
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
  return { latencies, lost, unflagged };
}

export async function measureAlertLatency(stack: Stack, jwtSecret: string, opts: { samples: number; progress: (m: string) => void }) {
  const token = await signToken(jwtSecret, 'usr_alice', 'payments');
  const one = await alertRun(stack, token, 1, opts.samples);
  opts.progress(
    `  1 subscriber: p50 ${summarize(one.latencies).p50} ms, p99 ${summarize(one.latencies).p99} ms, lost ${one.lost}${one.unflagged ? `, ${one.unflagged} measured purchase(s) raised no alert` : ''}`,
  );
  const hundred = await alertRun(stack, token, 100, opts.samples);
  opts.progress(
    `  100 subscribers: p50 ${summarize(hundred.latencies).p50} ms, p99 ${summarize(hundred.latencies).p99} ms, lost ${hundred.lost}${hundred.unflagged ? `, ${hundred.unflagged} measured purchase(s) raised no alert` : ''}`,
  );
  return { one: summarize(one.latencies), hundred: summarize(hundred.latencies), lost: one.lost + hundred.lost, unflagged: one.unflagged + hundred.unflagged };
}
