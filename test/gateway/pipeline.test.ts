/**
 * The one operation pipeline (gateway/pipeline.ts): HTTP and WebSocket run the same steps, so a
 * bad document gets the same 400-class coded error on both (never a 500, never a 4500 close), and
 * a refusal is audited the same way, with the same code, whichever transport carried it. Includes
 * a subscription that would reach the ads zone, on a deliberately bad supergraph.
 */
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribe, type WsMessage } from '../helpers/alerts.js';
import { composeWithoutLint } from '../helpers/bad-supergraph.js';
import { policyFromSupergraph } from '../../fence/operation-check.js';
import { checkQueryPlan } from '../../fence/plan-check.js';
import { Planner } from '../../gateway/planner.js';
import { expectUnseen } from '../helpers/matchers.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { readUntil } from '../helpers/wait.js';

type WsErrors = { message: string; extensions?: Record<string, unknown> }[];

/** The first message of a subscription, which must be an `error` message (not a close): its errors. */
async function wsErrors(stack: TestStack, token: string, query: string, variables: Record<string, unknown> = {}): Promise<WsErrors> {
  const sub = subscribe(stack, token, query, variables);
  try {
    const m: WsMessage = await sub.next();
    expect(m.kind).toBe('error');
    const errors = (m as { error: unknown }).error;
    // graphql-ws reports an `error` message as an array of GraphQL errors; a close would be a CloseEvent.
    expect(Array.isArray(errors)).toBe(true);
    return errors as WsErrors;
  } finally {
    await sub.dispose();
  }
}

async function auditRows(stack: TestStack, operationName: string): Promise<{ layer: string; decision: string }[]> {
  return stack.dbs.accounts('data_access_log').where({ operation_name: operationName }).orderBy('id').select('layer', 'decision');
}

describe('bad documents: the same coded 400-class error on both transports', () => {
  let stack: TestStack;
  let token: string;
  beforeAll(async () => {
    stack = await startTestStack();
    token = await stack.token('alice', 'payments');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('an unknown operationName', async () => {
    const http = await stack.gql('query A { __typename } query B { __typename }', undefined, token, {});
    expect(http.status).toBe(400);
    const named = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'query A { __typename }', operationName: 'Nope' }),
    });
    expect(named.status).toBe(400);
    const body = (await named.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');
    expect(body.errors[0]!.message).toContain('"Nope"');

    const errors = await wsErrorsNamed(stack, token, 'subscription A { chargeAlertRaised { id } }', 'Nope');
    expect(errors[0]!.extensions?.code).toBe('OPERATION_RESOLUTION_FAILURE');
  });

  it('@skip or @include on a subscription root field', async () => {
    const query = 'subscription S($v: Boolean!) { chargeAlertRaised @skip(if: $v) { id } }';
    const http = await stack.gql(query, { v: false }, token);
    expect(http.status).toBe(400);
    expect(http.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(http.errors![0]!.message).toMatch(/must not use @skip or @include/);
    const ws = await wsErrors(stack, token, query, { v: false });
    expect(ws[0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(ws[0]!.message).toMatch(/must not use @skip or @include/);
    // Also through a fragment at the root.
    const viaFragment = await wsErrors(
      stack,
      token,
      'subscription S($v: Boolean!) { ...F } fragment F on Subscription { chargeAlertRaised @include(if: $v) { id } }',
      { v: true },
    );
    expect(viaFragment[0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    // Refused before the fence, on either transport: still recorded, REFUSED with the code (docs/audit.md).
    const rows = await readUntil(
      async () =>
        (await stack.dbs.accounts('data_access_log').where({ operation_name: 'S' }).orderBy('id').select('layer', 'decision', 'leaf')) as {
          layer: string;
          decision: string;
          leaf: string;
        }[],
      (r) => r.length >= 3,
      'the refusals of S',
    );
    expect(rows.map((r) => [r.layer, r.decision, (JSON.parse(r.leaf) as { reason: string }).reason]).sort()).toEqual([
      ['gateway', 'REFUSED', 'GRAPHQL_VALIDATION_FAILED'],
      ['subscription', 'REFUSED', 'GRAPHQL_VALIDATION_FAILED'],
      ['subscription', 'REFUSED', 'GRAPHQL_VALIDATION_FAILED'],
    ]);
  });

  it('several root fields in a subscription', async () => {
    const query = 'subscription Two { a: chargeAlertRaised { id } b: chargeAlertRaised { id } }';
    const http = await stack.gql(query, undefined, token);
    expect(http.status).toBe(400);
    expect(http.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const ws = await wsErrors(stack, token, query);
    expect(ws[0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('each transport carries only its own kind of operation, after the fence', async () => {
    const http = await stack.gql('subscription OverHttp { chargeAlertRaised { id } }', undefined, token);
    expect(http.status).toBe(400);
    expect(http.errors![0]!.extensions!.code).toBe('BAD_REQUEST');
    const ws = await wsErrors(stack, token, 'query OverWs { me { id } }');
    expect(ws[0]!.extensions?.code).toBe('BAD_REQUEST');
    expect(ws[0]!.message).toMatch(/over HTTP/);
    // A mutation sent over WebSocket is refused, and nothing moves.
    const before = await stack.dbs.payments('journal_entries').count({ n: '*' }).first();
    const mutation = await wsErrors(stack, token, 'mutation { __typename }');
    expect(mutation[0]!.extensions?.code).toBe('BAD_REQUEST');
    expect(await stack.dbs.payments('journal_entries').count({ n: '*' }).first()).toEqual(before);
  });

  it('a refusal is audited the same way on both transports, with the same code', async () => {
    const ads = await stack.token('alice', 'advertising');
    // A non-payments caller: validated against the contract schema, which has no subscriptions.
    const http = await stack.gql('subscription RefusedHttp { chargeAlertRaised { id } }', undefined, ads);
    expectUnseen(http);
    const ws = await wsErrors(stack, ads, 'subscription RefusedWs { chargeAlertRaised { id } }');
    expectUnseen(ws);
    expect(ws[0]!.message).toBe(http.errors![0]!.message);
    expect(await auditRows(stack, 'RefusedHttp')).toEqual([{ layer: 'gateway', decision: 'REFUSED' }]);
    expect(await auditRows(stack, 'RefusedWs')).toEqual([{ layer: 'subscription', decision: 'REFUSED' }]);
    // A payments caller past the contract, refused by the fence: the same code on both transports.
    const pay = await stack.token('alice', 'payments');
    const adPath =
      'subscription AdPath%s { chargeAlertRaised { account { transactions(first: 1) { edges { node { counterparty { sponsoredOffers { id } } } } } } } }';
    const httpFence = await stack.gql(adPath.replace('%s', 'Http'), undefined, pay);
    const wsFence = await wsErrors(stack, pay, adPath.replace('%s', 'Ws'));
    expect(httpFence.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_DATA_USE');
    expect(wsFence[0]!.extensions?.code).toBe('FORBIDDEN_DATA_USE');
    expect(wsFence[0]!.extensions?.paths).toEqual(httpFence.errors![0]!.extensions!.paths);
    expect(await auditRows(stack, 'AdPathHttp')).toEqual([{ layer: 'gateway', decision: 'REFUSED' }]);
    expect(await auditRows(stack, 'AdPathWs')).toEqual([{ layer: 'subscription', decision: 'REFUSED' }]);
  });

  it('an invalid token is refused on both transports, never taken as anonymous', async () => {
    const http = await stack.gql('{ merchants(first: 1) { id } }', undefined, 'not-a-jwt');
    expect(http.status).toBe(401);
    expect(http.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    const sub = subscribe(stack, 'not-a-jwt', 'subscription { chargeAlertRaised { id } }');
    const m = await sub.next();
    await sub.dispose();
    expect(m.kind).toBe('error');
    expect((m as { error: { code?: number } }).error.code).toBe(4403);
  });
});

/** A named subscription over graphql-ws (the helper sends no operationName). */
async function wsErrorsNamed(stack: TestStack, token: string, query: string, operationName: string): Promise<WsErrors> {
  const { createClient } = await import('graphql-ws');
  const WebSocket = (await import('ws')).default;
  const client = createClient({
    url: stack.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  try {
    return await new Promise<WsErrors>((resolve, reject) => {
      client.subscribe(
        { query, operationName },
        { next: () => reject(new Error('unexpected next')), error: (e) => resolve(e as WsErrors), complete: () => reject(new Error('unexpected complete')) },
      );
    });
  } finally {
    await client.dispose();
  }
}

describe('a subscription reaching the ads zone through a charge alert (a bad supergraph: ads requires a charge alert field)', () => {
  const BAD_ADS = parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires"])
    type User @key(fields: "id") { id: ID! sponsoredOffers: [Offer!]! }
    type Offer { id: ID! headline: String! merchant: Merchant! }
    type Merchant @key(fields: "id", resolvable: false) { id: ID! }
    "The bad part: ads asks for each charge alert's risk score to target offers."
    type ChargeAlert @key(fields: "id") { id: ID! riskScore: Int! @external adHint: String @requires(fields: "riskScore") }
  `);
  let stack: TestStack;
  let adsRequests = 0;
  beforeAll(async () => {
    stack = await startTestStack({ supergraphSdl: composeWithoutLint(BAD_ADS), logLevel: 'silent' });
    stack.subgraphs.ads.server.on('request', () => {
      adsRequests += 1;
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is refused before anything is opened upstream, naming the path, and audited as on HTTP', async () => {
    const token = await stack.token('alice', 'payments');
    const errors = await wsErrors(stack, token, 'subscription Targeted { chargeAlertRaised { id adHint } }');
    // ChargeAlert.adHint is resolved by ads alone, under the payment-only chargeAlertRaised: the
    // operation check (layer 2) refuses it whoever asks; the plan check (layer 3) would have too.
    expect(errors[0]!.extensions).toMatchObject({ code: 'FORBIDDEN_DATA_USE', paths: ['Subscription.chargeAlertRaised → ChargeAlert.adHint'] });
    expect(stack.gateway.subscriptions.active).toBe(0);
    expect(adsRequests).toBe(0);
    expect(await auditRows(stack, 'Targeted')).toEqual([{ layer: 'subscription', decision: 'REFUSED' }]);
    // The same subscription plan, checked on its own, is a layer-3 violation too.
    const plan = new Planner(composeWithoutLint(BAD_ADS)).plan(
      parse('subscription { chargeAlertRaised { id adHint } }'),
      'subscription { chargeAlertRaised { id adHint } }',
      null,
    );
    const violations = checkQueryPlan(policyFromSupergraph(composeWithoutLint(BAD_ADS)), plan);
    expect(violations.map((v) => `${v.serviceName}:${v.where}`)).toContain('ads:requires');
  });
});
