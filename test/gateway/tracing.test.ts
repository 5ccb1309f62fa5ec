/**
 * Traces (lib/tracing.ts, docs/operations.md#tracing): with an in-memory exporter, one flagged
 * purchase through the gateway is ONE trace across every service it touches: the gateway (its own
 * server span, @apollo/gateway's spans, a client span per subgraph fetch), the payments subgraph
 * and its SQL (the outbox insert among it), the accounts audit append, then, across the outbox's
 * asynchronous hop, the alerts consumer applying the event (and its SQL), and the gateway's
 * subscription bridge delivering the alert and joining its fields. The advertising zone is sent no
 * trace context, signed requests still verify with a traceparent added after signing, and the
 * services' log lines carry the trace id.
 */
import { createPublicKey } from 'node:crypto';
import type http from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, stopTracing, TRACEPARENT_HEADER } from '../../lib/tracing.js';
import { ReplayGuard } from '../../lib/transport/replay.js';
import { COVERED_COMPONENTS, encodeCaller, NONCE_MEMORY_MS, SignatureVerifier, signMessage } from '../../lib/transport/signing.js';
import { op } from '../helpers/contract.js';
import { LogCapture } from '../helpers/logs.js';
import { pay, raisedAlert, subscribe, SUSPICIOUS, waitForLive } from '../helpers/alerts.js';
import { expectData } from '../helpers/matchers.js';
import { signerOf } from '../helpers/signing.js';
import { startTestStack, TEST_KEYS, userId, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const exporter = new InMemorySpanExporter();
const logs = new LogCapture();
let stack: TestStack;
let alice: string;

beforeAll(async () => {
  expect(startTracing({ service: 'gateway', exporter })).toBe(true);
  stack = await startTestStack({ logDestination: logs, logLevel: 'info' });
  alice = await stack.token('alice');
});
afterAll(async () => {
  await stack?.stop();
  await stopTracing();
});

const serviceOf = (s: ReadableSpan) => s.resource.attributes['service.name'];
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const spans = () => exporter.getFinishedSpans();
const describeSpan = (s: ReadableSpan) => `${String(serviceOf(s))}: ${s.name}`;

/** The span of `trace` matching `pred`, failing with the trace's spans listed. */
function one(trace: readonly ReadableSpan[], label: string, pred: (s: ReadableSpan) => boolean): ReadableSpan {
  const found = trace.filter(pred);
  expect(found.length, `${label} in ${JSON.stringify(trace.map(describeSpan))}`).toBeGreaterThan(0);
  return found[0]!;
}

/** Whether `span` descends from `ancestor` within `trace`. */
function descends(trace: readonly ReadableSpan[], span: ReadableSpan, ancestor: ReadableSpan): boolean {
  const byId = new Map(trace.map((s) => [s.spanContext().spanId, s]));
  for (let p = parentOf(span); p; p = byId.get(p) ? parentOf(byId.get(p)!) : undefined) if (p === ancestor.spanContext().spanId) return true;
  return false;
}

describe('one trace for a flagged purchase', () => {
  let all: ReadableSpan[];
  let trace: ReadableSpan[];
  let traceId: string;

  beforeAll(async () => {
    const sub = subscribe(stack, alice, op('ChargeAlerts'));
    await waitForLive(stack, 1);
    exporter.reset();
    const purchase = await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS });
    expect(purchase.userErrors).toEqual([]);
    expect(raisedAlert<{ purchase: { id: string } }>(await sub.next()).purchase.id).toBe(purchase.purchase!.id);
    await sub.dispose();
    // The purchase's trace is the one whose SQL wrote the outbox event.
    const outbox = () => spans().find((s) => String(s.attributes['db.query.text'] ?? '').includes('outbox_events') && s.name.startsWith('INSERT'));
    await waitFor(() => outbox() !== undefined, 'the outbox insert span');
    traceId = traceOf(outbox()!);
    // The bridge's span ends just after it hands the alert to the client.
    await waitFor(
      () => spans().some((s) => traceOf(s) === traceId && s.name.startsWith('subscription event')),
      'the subscription bridge span in the purchase trace',
    );
    all = spans();
    trace = all.filter((s) => traceOf(s) === traceId);
  });

  it('opens no trace for background work: the long poll that carried the event, lease renewals, ... are untraced', () => {
    const roots = all.filter((s) => !parentOf(s));
    expect(roots.map(describeSpan)).toEqual(roots.map(() => 'gateway: POST /graphql'));
    expect(all.some((s) => s.name.includes('/internal/events'))).toBe(false);
  });

  it('starts at the gateway, whose @apollo/gateway spans and subgraph fetches belong to it', () => {
    const root = one(trace, 'the root span', (s) => !parentOf(s));
    expect(serviceOf(root)).toBe('gateway');
    expect(root.name).toBe('POST /graphql');
    expect(root.kind).toBe(SpanKind.SERVER);
    expect(root.attributes['http.response.status_code']).toBe(200);
    one(trace, "@apollo/gateway's request span", (s) => s.name === 'gateway.request' && serviceOf(s) === 'gateway');
    one(trace, "@apollo/gateway's fetch span", (s) => s.name === 'gateway.fetch');
    expect(trace.filter((s) => !parentOf(s))).toHaveLength(1);
  });

  it('continues in the payments subgraph (a server span under the gateway client span) and its SQL', () => {
    const client = one(trace, 'the gateway client span to payments', (s) => s.name === 'POST payments' && s.kind === SpanKind.CLIENT);
    expect(serviceOf(client)).toBe('gateway');
    const server = one(trace, 'the payments server span', (s) => serviceOf(s) === 'payments' && s.kind === SpanKind.SERVER && s.name === 'POST /graphql');
    expect(parentOf(server)).toBe(client.spanContext().spanId);
    const sql = trace.filter((s) => serviceOf(s) === 'payments' && s.attributes['db.system.name'] !== undefined);
    expect(sql.length).toBeGreaterThan(1);
    for (const s of sql) expect(descends(trace, s, server), describeSpan(s)).toBe(true);
    const insert = one(trace, 'the outbox insert', (s) => String(s.attributes['db.query.text']).includes('outbox_events'));
    // Statements, never the values bound to them.
    expect(String(insert.attributes['db.query.text'])).not.toContain(SUSPICIOUS.merchantId);
    expect(Object.keys(insert.attributes).some((k) => k.includes('binding') || k.includes('parameter'))).toBe(false);
  });

  it('includes the audit append to accounts (an internal call made inside the trace)', () => {
    one(trace, 'the accounts audit route', (s) => serviceOf(s) === 'accounts' && s.name === 'POST /internal/audit' && s.kind === SpanKind.SERVER);
  });

  it('crosses the outbox: the alerts consumer applies the event in the same trace, with its SQL', () => {
    const consumer = one(trace, 'the alerts consumer span', (s) => serviceOf(s) === 'alerts' && s.name === 'process PURCHASE_POSTED');
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    const payments = one(trace, 'the payments server span', (s) => serviceOf(s) === 'payments' && s.kind === SpanKind.SERVER);
    expect(descends(trace, consumer, payments)).toBe(true);
    one(
      trace,
      "the alert's insert",
      (s) => serviceOf(s) === 'alerts' && String(s.attributes['db.query.text']).includes('charge_alerts') && descends(trace, s, consumer),
    );
  });

  it('ends in the subscription bridge, which joins the alert in the same trace', () => {
    const consumer = one(trace, 'the alerts consumer span', (s) => s.name === 'process PURCHASE_POSTED');
    const bridge = one(trace, 'the bridge span', (s) => s.name.startsWith('subscription event'));
    expect(serviceOf(bridge)).toBe('gateway');
    expect(bridge.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(bridge)).toBe(consumer.spanContext().spanId);
    // The join of the merchant (ChargeAlerts selects purchase { merchant { ... } }) runs inside it.
    const joined = trace.filter((s) => s.kind === SpanKind.SERVER && serviceOf(s) !== 'gateway' && descends(trace, s, bridge));
    expect(joined.map(serviceOf)).toEqual(expect.arrayContaining(['payments']));
  });

  it('spans every payments-zone service of the operation', () => {
    expect(new Set(trace.map(serviceOf))).toEqual(new Set(['gateway', 'accounts', 'payments', 'alerts', 'merchants']));
  });

  it('writes the trace id into the services’ log lines', () => {
    const records = logs.records().filter((r) => r.traceId === traceId);
    expect(records.some((r) => r.service === 'payments' && r.msg === 'request')).toBe(true);
    expect(records.some((r) => r.service === 'gateway')).toBe(true);
    for (const r of records) expect(r.spanId).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('trace context and the fence', () => {
  it('sends the advertising zone no trace context; its fetch shows as the gateway client span only', async () => {
    const seen: (string | undefined)[] = [];
    const record = (req: http.IncomingMessage) => seen.push(req.headers[TRACEPARENT_HEADER] as string | undefined);
    const ads = stack.subgraphs.ads.server;
    ads.prependListener('request', record);
    try {
      exporter.reset();
      expectData(await stack.gql(op('Offers'), {}, alice));
    } finally {
      ads.off('request', record);
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((h) => h === undefined)).toBe(true);
    const client = spans().find((s) => s.name === 'POST ads');
    expect(client && serviceOf(client)).toBe('gateway');
    expect(spans().some((s) => serviceOf(s) === 'ads')).toBe(false);
  });

  it('records no document, variable or quoted literal: an invalid mutation naming an amount leaves it out of every span', async () => {
    exporter.reset();
    const amount = '98765.43';
    const res = await stack.gql(
      `mutation { makePurchase(input: { accountId: "acc_alice_card", merchantId: "mer_air_france", amount: { amount: ${amount}, currency: "USD" }, idempotencyKey: "k-${Date.now()}" }) { purchase { id } } }`,
      {},
      alice,
    );
    expect(res.errors?.[0]?.message).toContain(amount); // the client is told, in its own response
    const sent = await stack.gql(
      op('Pay'),
      {
        input: {
          accountId: 'acc_alice_card',
          merchantId: 'mer_blue_bottle',
          amount: { amount: '87654.32', currency: 'USD' },
          idempotencyKey: `k-${Date.now()}`,
        },
      },
      alice,
    );
    expect(sent.status).toBe(200);
    await waitFor(() => spans().filter((s) => !parentOf(s)).length >= 2, 'both operations traced');
    const recorded = JSON.stringify(spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })));
    expect(recorded).not.toContain(amount);
    expect(recorded).not.toContain('87654');
    expect(recorded).not.toContain('mer_blue_bottle');
  });

  it('leaves traceparent out of the signature: a signed request verifies with one added after signing', async () => {
    expect(COVERED_COMPONENTS).not.toContain(TRACEPARENT_HEADER);
    const body = JSON.stringify({ query: '{ __typename }' });
    const caller = encodeCaller({ userId: userId('alice'), purpose: 'payments', client: null });
    const headers = await signMessage(signerOf('gateway'), { method: 'POST', path: '/graphql', target: 'payments', caller, body });
    const verifier = new SignatureVerifier({
      service: 'payments',
      accept: { gateway: createPublicKey(TEST_KEYS.gateway) },
      replay: new ReplayGuard(NONCE_MEMORY_MS),
    });
    const traced = { ...headers, [TRACEPARENT_HEADER]: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    expect(await verifier.check({ method: 'POST', path: '/graphql', headers: traced, body })).toMatchObject({ ok: true });
  });
});
