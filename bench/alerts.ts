/**
 * Alert latency: time from a purchase's commit (its createdAt) to receipt by graphql-ws
 * subscribers through the gateway, with 1 and with 100 subscribers, and how many were lost.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { signToken } from '../lib/auth.js';
import type { Stack } from '../lib/stack.js';

const SUBSCRIPTION = 'subscription { chargeAlertRaised { id purchase { id merchant { name } } } }';
const PAY = 'mutation Pay($input: MakePurchaseInput!) { makePurchase(input: $input) { purchase { id createdAt } userErrors { code message } } }';

export interface LatencyStats {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
}

function summarize(values: number[]): LatencyStats {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
  return { p50: at(50), p95: at(95), p99: at(99), samples: s.length };
}

/** A purchase the fraud rules flag: a foreign merchant, card not present, in the small hours. */
function suspicious(i: number) {
  return { accountId: 'acc_alice_card', merchantId: 'mer_air_france', amount: { amount: '1.00', currency: 'USD' }, description: 'bench', idempotencyKey: `bench-alert-${process.pid}-${Date.now()}-${i}`, cardPresent: false };
}

async function run(stack: Stack, token: string, subscribers: number, samples: number): Promise<{ latencies: number[]; lost: number }> {
  const wsUrl = stack.url.replace(/^http/, 'ws');
  const clients: Client[] = [];
  const waiters = new Map<string, { remaining: number; done: () => void }>();
  const received = new Map<string, number[]>();
  const latencies: number[] = [];
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
  let lost = 0;
  try {
    for (let i = 0; i < samples; i++) {
      const res = await fetch(stack.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: PAY, variables: { input: suspicious(i) } }) });
      const body = (await res.json()) as { data?: { makePurchase: { purchase: { id: string; createdAt: string } | null } } };
      const purchase = body.data?.makePurchase.purchase;
      if (!purchase) throw new Error(`purchase failed: ${JSON.stringify(body).slice(0, 300)}`);
      const committed = Date.parse(purchase.createdAt);
      await new Promise<void>((resolve) => {
        const already = received.get(purchase.id)?.length ?? 0;
        if (already >= subscribers) return resolve();
        const timer = setTimeout(resolve, 5000);
        waiters.set(purchase.id, { remaining: subscribers - already, done: () => (clearTimeout(timer), resolve()) });
      });
      const got = received.get(purchase.id) ?? [];
      lost += subscribers - got.length;
      for (const t of got) latencies.push(t - committed);
    }
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
  return { latencies, lost };
}

export async function measureAlertLatency(stack: Stack, jwtSecret: string, opts: { samples: number; progress: (m: string) => void }) {
  const token = await signToken(jwtSecret, 'usr_alice', 'payments');
  const one = await run(stack, token, 1, opts.samples);
  opts.progress(`  1 subscriber: p50 ${summarize(one.latencies).p50} ms, p99 ${summarize(one.latencies).p99} ms, lost ${one.lost}`);
  const hundred = await run(stack, token, 100, opts.samples);
  opts.progress(`  100 subscribers: p50 ${summarize(hundred.latencies).p50} ms, p99 ${summarize(hundred.latencies).p99} ms, lost ${hundred.lost}`);
  return { one: summarize(one.latencies), hundred: summarize(hundred.latencies), lost: one.lost + hundred.lost };
}
