/** Helpers for the alerts tests: a real graphql-ws client through the gateway, and condition waits. */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestStack } from './stack.js';

export type WsMessage =
  | { kind: 'next'; value: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] } }
  | { kind: 'error'; error: unknown }
  | { kind: 'complete' };

export interface LiveSubscription {
  client: Client;
  /** The next message (next, error or complete), or a rejection after `timeoutMs`. */
  next(timeoutMs?: number): Promise<WsMessage>;
  /** Messages received and not yet taken with next(). */
  pending(): number;
  dispose(): Promise<void>;
}

export function wsUrlOf(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws');
}

/** Subscribes through the gateway with a real graphql-ws client (no retries: failures surface). */
export function subscribe(stack: TestStack, token: string | null, query: string, variables: Record<string, unknown> = {}): LiveSubscription {
  const client = createClient({
    url: wsUrlOf(stack.url),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  });
  const queue: WsMessage[] = [];
  const waiters: ((m: WsMessage) => void)[] = [];
  const push = (m: WsMessage) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };
  client.subscribe(
    { query, variables },
    {
      next: (value) => push({ kind: 'next', value: value as Extract<WsMessage, { kind: 'next' }>['value'] }),
      error: (error) => push({ kind: 'error', error }),
      complete: () => push({ kind: 'complete' }),
    },
  );
  return {
    client,
    pending: () => queue.length,
    next(timeoutMs = 15_000) {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no subscription message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (msg: WsMessage) => {
          clearTimeout(timer);
          resolve(msg);
        };
        waiters.push(waiter);
      });
    },
    async dispose() {
      await client.dispose();
    },
  };
}

/** Waits until `cond` holds, checking every 20 ms; fails with `label` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, label: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the gateway has `n` subscriptions whose upstream is established. */
export function waitForLive(stack: TestStack, n: number): Promise<void> {
  return waitFor(() => stack.gateway.subscriptions.live >= n, `${n} live subscription(s)`);
}

export const PAY = `mutation Pay($input: MakePurchaseInput!) {
  makePurchase(input: $input) {
    purchase { id status amount { amount currency } merchant { id name country } account { id } createdAt }
    userErrors { code field message }
  }
}`;

export interface PayResult {
  makePurchase: { purchase: { id: string } | null; userErrors: { code: string; field: string[] | null; message: string }[] };
}

let seq = 0;
export async function pay(stack: TestStack, token: string, input: { accountId: string; merchantId: string; amount: string; cardPresent?: boolean }): Promise<PayResult['makePurchase']> {
  seq += 1;
  const res = await stack.gql<PayResult>(PAY, {
    input: {
      accountId: input.accountId,
      merchantId: input.merchantId,
      amount: { amount: input.amount, currency: 'USD' },
      idempotencyKey: `alerts-test-${process.pid}-${Date.now()}-${seq}`,
      ...(input.cardPresent === undefined ? {} : { cardPresent: input.cardPresent }),
    },
  }, token);
  if (res.errors) throw new Error(`makePurchase failed: ${JSON.stringify(res.errors)}`);
  return res.data!.makePurchase;
}

/** A purchase every rule set flags: large, at a foreign merchant, card not present. */
export const SUSPICIOUS = { merchantId: 'mer_air_france', amount: '1200.00', cardPresent: false } as const;
/** A purchase nothing flags: a coffee at a domestic merchant, card present. */
export const NORMAL = { merchantId: 'mer_blue_bottle', amount: '4.50', cardPresent: true } as const;
