/**
 * Helpers of the alerts tests: a real graphql-ws client through the gateway (ChargeAlerts
 * subscriptions), the purchases that do and do not raise an alert, reading a raised alert, and
 * the alerts service's status (its signed internal route).
 */
import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { expect } from 'vitest';
import type { Caller } from '../../lib/auth.js';
import { callInternal } from '../../lib/transport/internal-client.js';
import { GRANT_EXTENSION, signSubscribeGrant, type SubscribeGrant } from '../../lib/transport/signing.js';
import { VELOCITY_MAX_CHARGES } from '../../subgraphs/alerts/rules.js';
import type { AlertsStatus } from '../../subgraphs/alerts/status.js';
import { op } from './contract.js';
import { expectData, type GraphQLErrorLike } from './matchers.js';
import { signerOf } from './signing.js';
import type { TestStack } from './stack.js';
import { waitFor } from './wait.js';

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

/** What the stack's alerts service is doing (POST /internal/status, signed as the gateway): lease, events applied, bus. */
export function alertsStatus(stack: TestStack): Promise<AlertsStatus> {
  const base = stack.subgraphs.alerts.url.replace(/\/graphql$/, '');
  return callInternal<AlertsStatus>(signerOf('gateway', stack.keys), 'alerts', base, 'status', {});
}

/** Waits until the gateway has `n` subscriptions whose upstream is established. */
export function waitForLive(stack: TestStack, n: number): Promise<void> {
  return waitFor(() => stack.gateway.subscriptions.live >= n, `${n} live subscription(s)`);
}

export const PAY = op('Pay');

export interface PayResult {
  makePurchase: { purchase: { id: string } | null; userErrors: { code: string; field: string[] | null; message: string }[] };
}

export async function pay(
  stack: TestStack,
  token: string,
  input: { accountId: string; merchantId: string; amount: string; cardPresent?: boolean },
): Promise<PayResult['makePurchase']> {
  const res = await stack.gql<PayResult>(
    PAY,
    {
      input: {
        accountId: input.accountId,
        merchantId: input.merchantId,
        amount: { amount: input.amount, currency: 'USD' },
        idempotencyKey: `alerts-test-${randomUUID()}`,
        ...(input.cardPresent === undefined ? {} : { cardPresent: input.cardPresent }),
      },
    },
    token,
  );
  return expectData(res).makePurchase;
}

/** A purchase every rule set flags: large, at a foreign merchant, card not present. */
export const SUSPICIOUS = { merchantId: 'mer_air_france', amount: '1200.00', cardPresent: false } as const;
/** A purchase nothing flags: a coffee at a domestic merchant, card present. */
export const NORMAL = { merchantId: 'mer_blue_bottle', amount: '4.50', cardPresent: true } as const;

/** What the ChargeAlerts contract subscription delivers. */
export interface RaisedAlert {
  id: string;
  riskScore: number;
  reasons: string[];
  purchase: { id: string; amount: { amount: string; currency: string }; merchant: { id: string; name: string; country: string } };
  account: { id: string };
  createdAt: string;
}

/** The alert a subscription message carries: fails on an error, a completion or GraphQL errors. */
export function raisedAlert<T = RaisedAlert>(m: WsMessage): T {
  if (m.kind !== 'next') throw new Error(`expected an alert, got ${JSON.stringify(m)}`);
  expect(m.value.errors, JSON.stringify(m.value.errors)).toBeUndefined();
  return (m.value.data as { chargeAlertRaised: T }).chargeAlertRaised;
}

/** The GraphQL errors a subscription ended with (graphql-ws delivers them as the error). */
export function subscriptionErrors(m: WsMessage): readonly GraphQLErrorLike[] {
  if (m.kind !== 'error' || !Array.isArray(m.error)) throw new Error(`expected GraphQL errors, got ${JSON.stringify(m)}`);
  return m.error as GraphQLErrorLike[];
}

/** The WebSocket close code a subscription ended with (4403: a rejected connection_init). */
export function closeCode(m: WsMessage): number | undefined {
  if (m.kind !== 'error') throw new Error(`expected the connection to close, got ${JSON.stringify(m)}`);
  return (m.error as { code?: number }).code;
}

/**
 * Opens a graphql-ws connection straight to the alerts service (no gateway) with `params` as its
 * connection_init payload and subscribes once with `extensions` (where the gateway puts a
 * subscription's signed grant); resolves with how it ended: the close (code and reason), the
 * subscription's GraphQL errors, or the first event's data.
 */
export function connectAlertsDirect(
  stack: TestStack,
  params: Record<string, unknown>,
  opts: { query?: string; extensions?: Record<string, unknown> } = {},
): Promise<{ code?: number; reason?: string; data?: unknown; errors?: GraphQLErrorLike[] }> {
  const query = opts.query ?? 'subscription { chargeAlertRaised { id riskScore } }';
  const client = createClient({ url: wsUrlOf(stack.subgraphs.alerts.url), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: params });
  return new Promise<{ code?: number; reason?: string; data?: unknown; errors?: GraphQLErrorLike[] }>((resolve) => {
    client.subscribe(
      { query, ...(opts.extensions ? { extensions: opts.extensions } : {}) },
      {
        next: (data) => resolve({ data }),
        error: (e) => resolve(Array.isArray(e) ? { errors: e as GraphQLErrorLike[] } : (e as { code: number; reason: string })),
        complete: () => resolve({}),
      },
    );
  }).finally(() => client.dispose());
}

/** The grant extensions of a direct subscription (what the gateway's bridge sends), signed by `signer` for `caller`. */
export async function grantExtensions(
  signer: Parameters<typeof signSubscribeGrant>[0],
  caller: Caller,
  grant: Partial<SubscribeGrant> & { query: string },
  target: Parameters<typeof signSubscribeGrant>[1] = 'alerts',
): Promise<Record<string, unknown>> {
  const full: SubscribeGrant = { operationName: null, variables: {}, resumeAfter: null, since: null, ...grant };
  const fields = await signSubscribeGrant(signer, target, caller, full);
  return { [GRANT_EXTENSION]: { ...fields, resumeAfter: full.resumeAfter, since: full.since } };
}

/**
 * A small card-not-present charge at a foreign merchant: FOREIGN_MERCHANT alone (25) raises
 * nothing, but from the VELOCITY_MAX_CHARGES-th charge on the account within the velocity window
 * on, VELOCITY (30) joins it and every such charge raises an alert. Cheap enough for bursts.
 */
export const FLAGGED_AFTER_WARM_UP = { merchantId: 'mer_air_france', amount: '10.00', cardPresent: false } as const;

/** Pays the charges after which every FLAGGED_AFTER_WARM_UP charge on `accountId` raises an alert. */
export async function warmUp(stack: TestStack, token: string, accountId: string): Promise<void> {
  for (let i = 1; i < VELOCITY_MAX_CHARGES; i++) expect((await pay(stack, token, { accountId, ...FLAGGED_AFTER_WARM_UP })).userErrors).toEqual([]);
}
