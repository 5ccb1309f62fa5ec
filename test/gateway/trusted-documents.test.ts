/**
 * Trusted documents (gateway/trusted-documents.ts): the committed manifest is what `npm run
 * documents` builds; in production only its operations run, by id (Apollo's persisted-query
 * extension, over HTTP POST, GET and graphql-ws) or as the exact text, with @apollo/client's
 * persisted-query link too; anything else is refused with a clear code, counted, audited when it
 * selects payment-only data, and never reaches a subgraph; development runs any document.
 */
import fs from 'node:fs';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getOperationAST, OperationTypeNode, print } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentId, parseManifest, type PersistedQueryManifest } from '../../gateway/trusted-documents.js';
import { MANIFEST_PATH, manifestFromOperations, manifestText, readManifest } from '../../operations/manifest.js';
import { OPS, op } from '../helpers/contract.js';
import { expectData, expectGraphQLError } from '../helpers/matchers.js';
import { postGraphQL, startTestStack, type TestStack } from '../helpers/stack.js';
import { waitForLive, wsUrlOf } from '../helpers/alerts.js';
import { createCache } from '../../web/src/apollo.js';
import { ACCESS_LOG, CHARGE_ALERTS, HISTORY, ME } from '../../web/src/operations.js';

const manifest = readManifest();
const idOf = (name: string) => {
  const entry = manifest.operations.find((o) => o.name === name);
  if (!entry) throw new Error(`the manifest has no ${name}`);
  return entry.id;
};
const byId = (name: string, variables?: Record<string, unknown>) => ({
  operationName: name,
  variables,
  extensions: { persistedQuery: { version: 1, sha256Hash: idOf(name) } },
});
const metricLine = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

describe('the manifest', () => {
  it('is the one npm run documents builds from operations/paygraph.graphql, each id the sha256 of its body', () => {
    expect(fs.readFileSync(MANIFEST_PATH, 'utf8')).toBe(manifestText(manifestFromOperations()));
    for (const o of manifest.operations) expect(o.id).toBe(documentId(o.body));
    expect(() => parseManifest(JSON.stringify({ ...manifest, operations: [{ ...manifest.operations[0]!, body: '{ me { id } }' }] }))).toThrow(/sha256/);
  });

  it('lists every contract operation with the text the contract sends', () => {
    for (const [name, text] of Object.entries(OPS)) expect(manifest.operations.find((o) => o.name === name)?.body, name).toBe(text);
  });
});

describe('in production (required)', () => {
  let stack: TestStack;
  let alice: string;
  beforeAll(async () => {
    stack = await startTestStack({ production: true });
    alice = await stack.token('alice');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs a listed operation sent as its exact text, by id over POST, and by id over GET', async () => {
    const auth = { authorization: `Bearer ${alice}` };
    expect(expectData(await stack.gql<{ me: { handle: string } }>(op('MyBalances'), {}, alice)).me.handle).toBe('alice');
    expect(expectData(await postGraphQL<{ me: { handle: string } }>(stack.url, byId('MyBalances'), auth)).me.handle).toBe('alice');
    const search = new URLSearchParams({ operationName: 'Merchants', variables: '{"first":2}', extensions: JSON.stringify(byId('Merchants').extensions) });
    const res = await fetch(`${stack.url}?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { merchants: unknown[] } }).data.merchants).toHaveLength(2);
  });

  it('refuses an unknown id with PERSISTED_QUERY_NOT_FOUND and other text with OPERATION_NOT_TRUSTED, before any subgraph is called, and counts both', async () => {
    let notFound: Awaited<ReturnType<typeof postGraphQL>> | undefined;
    let untrusted: Awaited<ReturnType<typeof stack.gql>> | undefined;
    const statements = await stack.countQueries(async () => {
      notFound = await postGraphQL(stack.url, { extensions: { persistedQuery: { version: 1, sha256Hash: documentId('query Nope { me { id } }') } } });
      untrusted = await stack.gql('query Mine { me { id handle } }', {}, alice);
      // (accounts: what the operation would read, and where audit records go; the other
      // databases have background workers of their own.)
    }, ['accounts']);
    expectGraphQLError(notFound!, 'PERSISTED_QUERY_NOT_FOUND', { noData: true });
    const err = expectGraphQLError(untrusted!, 'OPERATION_NOT_TRUSTED', { status: 400, noData: true });
    expect(err.message).toMatch(/trusted operations/);
    // The exact text only: the same operation reformatted is not the listed one.
    expectGraphQLError(await stack.gql(op('MyBalances').replace(/\n\s*/g, ' '), {}, alice), 'OPERATION_NOT_TRUSTED', { status: 400 });
    expect(statements).toBe(0);
    const metrics = await (await fetch(stack.gateway.metricsUrl)).text();
    expect(metricLine(metrics, 'paygraph_gateway_untrusted_operations_total{reason="unknown_id"}')).toMatch(/ [1-9]\d*$/);
    expect(metricLine(metrics, 'paygraph_gateway_untrusted_operations_total{reason="not_in_manifest"}')).toMatch(/ [2-9]\d*$/);
    // Labelled by the manifest: listed operations by name, the rest `unlisted` (never the client's name).
    expect(metrics).toContain('operation="MyBalances"');
    expect(metrics).toContain('operation="unlisted"');
    expect(metrics).not.toContain('operation="Mine"');
  });

  it('audits an untrusted operation that selects payment-only data as refused', async () => {
    const r = await stack.gql('query SneakyMasks { me { accounts { mask } } }', {}, alice);
    expectGraphQLError(r, 'OPERATION_NOT_TRUSTED', { status: 400, noData: true });
    const rows = await stack.dbs.accounts('data_access_log').where({ operation_name: 'SneakyMasks' });
    // One record (not a second from the pipeline's early-refusal step), with the refusal's reason.
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ decision: 'REFUSED', purpose: 'payments' });
    expect(JSON.parse(rows[0].leaf as string)).toMatchObject({ decision: 'REFUSED', reason: 'OPERATION_NOT_TRUSTED' });
    // Nothing protected, nothing audited.
    await stack.gql('query Harmless { merchants(first: 1) { id } }');
    expect(await stack.dbs.accounts('data_access_log').where({ operation_name: 'Harmless' })).toHaveLength(0);
  });

  it('over graphql-ws: refuses an untrusted subscription and runs the listed one sent by id', async () => {
    const client = createClient({
      url: wsUrlOf(stack.url),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${alice}` },
    });
    try {
      const refused = await new Promise<unknown>((resolve) => {
        client.subscribe({ query: 'subscription Mine { chargeAlertRaised { id } }' }, { next: () => undefined, error: resolve, complete: () => resolve(null) });
      });
      expect(JSON.stringify(refused)).toContain('OPERATION_NOT_TRUSTED');
      const errors: unknown[] = [];
      const before = stack.gateway.subscriptions.live;
      // graphql-ws requires a query string: empty means "by id".
      client.subscribe({ query: '', ...byId('ChargeAlerts') }, { next: () => undefined, error: (e) => errors.push(e), complete: () => undefined });
      await waitForLive(stack, before + 1);
      expect(errors).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it('serves @apollo/client through its persisted-query link, ids from the manifest by operation name', async () => {
    const ids = new Map(manifest.operations.map((o) => [o.name, o.id]));
    const client = new ApolloClient({
      link: ApolloLink.from([
        new PersistedQueryLink({ generateHash: (document) => ids.get(getOperationAST(document)?.name?.value ?? '') ?? '' }),
        new HttpLink({ uri: stack.url, headers: { authorization: `Bearer ${alice}` } }),
      ]),
      cache: new InMemoryCache(),
    });
    try {
      const { data } = await client.query<{ merchants: { id: string }[] }>({ query: gql(op('Merchants')), variables: { first: 3 }, fetchPolicy: 'no-cache' });
      expect(data?.merchants).toHaveLength(3);
    } finally {
      client.stop();
    }
  });

  it("runs the web client's documents as @apollo/client sends them (its cache's __typename added), over HTTP and graphql-ws", async () => {
    const ws = createClient({ url: wsUrlOf(stack.url), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${alice}` } });
    const client = new ApolloClient({
      link: ApolloLink.split(
        ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
        new GraphQLWsLink(ws),
        new HttpLink({ uri: stack.url, headers: { authorization: `Bearer ${alice}` } }),
      ),
      cache: createCache(), // the web app's own cache (web/src/apollo.ts)
    });
    try {
      const me = (await client.query({ query: ME })).data!.me!;
      expect(me.handle).toBe('alice');
      const history = (await client.query({ query: HISTORY, variables: { accountId: me.accounts[0]!.id, first: 2 } })).data!.account!;
      expect(history.transactions.edges.length).toBeGreaterThan(0);
      expect((await client.query({ query: ACCESS_LOG, variables: { first: 1 } })).data!.me!.dataAccessLog.totalCount).toBeGreaterThan(0);
      const before = stack.gateway.subscriptions.live;
      const errors: unknown[] = [];
      const sub = client.subscribe({ query: CHARGE_ALERTS }).subscribe({ error: (e: unknown) => errors.push(e) });
      await waitForLive(stack, before + 1);
      expect(errors).toEqual([]);
      sub.unsubscribe();
      // A web document's source text (no __typename, and not a contract operation) is not trusted.
      expectGraphQLError(await stack.gql(print(ACCESS_LOG), { first: 1 }, alice), 'OPERATION_NOT_TRUSTED', { status: 400, noData: true });
    } finally {
      client.stop();
      await ws.dispose();
    }
  });
});

it("an untrusted mutation spends none of the caller's rate limit", async () => {
  const strict = await startTestStack({ production: true, limits: { mutationsPerWindow: 1 } });
  try {
    const alice = await strict.token('alice');
    const input = (key: string) => ({
      input: { fromAccountId: 'acc_alice_checking', toHandle: 'nobody', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: key },
    });
    const untrusted = 'mutation Mine($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }';
    for (const key of ['u1', 'u2']) expectGraphQLError(await strict.gql(untrusted, input(key), alice), 'OPERATION_NOT_TRUSTED', { status: 400 });
    expect(expectData(await strict.gql<{ sendTransfer: { userErrors: unknown[] } }>(op('SendMoney'), input('t1'), alice)).sendTransfer.userErrors).not.toEqual(
      [],
    );
    expectGraphQLError(await strict.gql(op('SendMoney'), input('t2'), alice), 'RATE_LIMITED', { status: 429 });
  } finally {
    await strict.stop();
  }
});

describe('in development (any)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs any document, and still resolves listed ids', async () => {
    expectData(await stack.gql('query Mine { merchants(first: 1) { id } }'));
    expect(expectData(await postGraphQL<{ merchants: unknown[] }>(stack.url, byId('Merchants', { first: 2 }))).merchants).toHaveLength(2);
  });

  it('takes a manifest of its own (PAYGRAPH_TRUSTED_DOCUMENTS_MANIFEST) in required mode', async () => {
    const body = 'query OnlyThis {\n  merchants(first: 1) {\n    id\n  }\n}';
    const own: PersistedQueryManifest = {
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: [{ id: documentId(body), name: 'OnlyThis', type: 'query', body }],
    };
    const strict = await startTestStack({ gateway: { trustedDocuments: { mode: 'required', manifest: own } } });
    try {
      expectData(await strict.gql(body));
      expectGraphQLError(await strict.gql(op('Merchants'), { first: 1 }), 'OPERATION_NOT_TRUSTED', { status: 400 });
    } finally {
      await strict.stop();
    }
  });
});
