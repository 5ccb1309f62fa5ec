/**
 * Fence layer 4: the subgraphs themselves. Direct calls that bypass the gateway are refused with 401
 * and no data (unsigned, forged, stale, replayed, tampered, signed by another service's key);
 * health checks stay open; payments-zone subgraphs refuse payment-only fields, `_entities`
 * included, when the signed caller's purpose is not `payments`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../lib/auth.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../../lib/config.js';
import { generateKeyRing } from '../../lib/transport/keys.js';
import { expectData, expectForbiddenDataUse, expectGraphQLError } from '../helpers/matchers.js';
import { signerOf, signGraphQL, signInternal } from '../helpers/signing.js';
import { postGraphQL, startTestStack, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
const alice = (purpose: Caller['purpose']): Caller => ({ userId: userId('alice'), purpose, client: null });

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** POSTs `body` exactly as signed, straight to a subgraph. */
const post = (url: string, body: string, headers: Record<string, string>) => postGraphQL<unknown>(url, body, headers);

/** A gateway key pair of another install: right name, wrong key. */
const foreignGateway = signerOf('gateway', generateKeyRing());

/** A query each subgraph would answer with real data if it accepted the request. */
const PROBE: Record<SubgraphName, string> = {
  accounts: '{ me { id handle accounts { id mask } } }',
  payments: `{ _entities(representations: [{ __typename: "Account", id: "acc_alice_checking" }]) { ... on Account { balance { current { amount } } } } }`,
  merchants: '{ merchants(first: 2) { id name } }',
  alerts: '{ chargeAlerts { id riskScore } }',
  ads: `{ _entities(representations: [{ __typename: "User", id: "usr_alice" }]) { ... on User { sponsoredOffers { id headline } } } }`,
};

function expect401(r: Awaited<ReturnType<typeof post>>): void {
  expectGraphQLError(r, 'UNAUTHENTICATED', { status: 401, noData: true });
}

describe('layer 4: only gateway-signed requests reach a subgraph', () => {
  for (const name of SUBGRAPH_NAMES) {
    describe(name, () => {
      const body = () => JSON.stringify({ query: PROBE[name] });

      it('a correctly signed payments request is served (control)', async () => {
        const b = body();
        const r = await post(stack.subgraphs[name].url, b, await signGraphQL(name, alice('payments'), b));
        expect(r.status).toBe(200);
        expectData(r);
      });

      it('unsigned: 401, no data', async () => {
        expect401(await post(stack.subgraphs[name].url, body(), {}));
      });

      it('forged: signed as the gateway with a key of another install', async () => {
        const b = body();
        expect401(await post(stack.subgraphs[name].url, b, await signGraphQL(name, alice('payments'), b, { as: foreignGateway })));
      });

      it('stale: a signature two minutes old', async () => {
        const b = body();
        expect401(await post(stack.subgraphs[name].url, b, await signGraphQL(name, alice('payments'), b, { now: Date.now() - 120_000 })));
      });

      it('replayed: the same signed request twice', async () => {
        const b = body();
        const headers = await signGraphQL(name, alice('payments'), b);
        expect((await post(stack.subgraphs[name].url, b, headers)).status).toBe(200);
        expect401(await post(stack.subgraphs[name].url, b, headers));
      });

      it('tampered: a signed body swapped for another', async () => {
        const b = body();
        const headers = await signGraphQL(name, alice('payments'), b);
        expect401(await post(stack.subgraphs[name].url, JSON.stringify({ query: '{ __typename }' }), headers));
      });

      it('tampered: a signed body swapped with its content digest', async () => {
        const b = body();
        const headers = await signGraphQL(name, alice('payments'), b);
        const other = JSON.stringify({ query: '{ __typename }' });
        const digest = (await signGraphQL(name, alice('payments'), other))['content-digest']!;
        expect401(await post(stack.subgraphs[name].url, other, { ...headers, 'content-digest': digest }));
      });

      it('tampered: the caller header swapped (advertising signed, payments claimed)', async () => {
        const b = body();
        const headers = await signGraphQL(name, alice('advertising'), b);
        const claimed = await signGraphQL(name, alice('payments'), b);
        expect401(await post(stack.subgraphs[name].url, b, { ...headers, 'x-paygraph-caller': claimed['x-paygraph-caller']! }));
      });

      it('the health check stays open', async () => {
        const res = await fetch(stack.subgraphs[name].url.replace(/\/graphql$/, '/health'));
        expect(res.status).toBe(200);
      });
    });
  }

  it('a request signed for ads is refused by every other subgraph', async () => {
    for (const name of SUBGRAPH_NAMES.filter((n) => n !== 'ads')) {
      const b = JSON.stringify({ query: PROBE[name] });
      expect401(await post(stack.subgraphs[name].url, b, await signGraphQL('ads', alice('payments'), b)));
    }
  });

  it('internal routes take their own signatures: a GraphQL signature or the ads key cannot append to the audit log', async () => {
    const url = stack.subgraphs.accounts.url.replace(/\/graphql$/, '/internal/audit');
    const record = JSON.stringify({
      at: new Date().toISOString(),
      userId: null,
      purpose: null,
      client: null,
      operationName: 'Forged',
      operationHash: 'a'.repeat(64),
      coordinates: ['Account.mask'],
      decision: 'ALLOWED',
      layer: 'gateway',
      requestId: null,
    });
    const refusals: [Record<string, string>, number][] = [
      // The gateway's signature of a GraphQL request (another path): not valid here.
      [await signGraphQL('accounts', alice(null), record), 401],
      // The gateway's signature of an audit append for another service.
      [await signInternal('ads', 'audit', record), 401],
      // Signed by ads itself: a service the route does not accept.
      [await signInternal('accounts', 'audit', record, { as: 'ads' }), 403],
    ];
    for (const [headers, status] of refusals) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: record });
      expect(res.status).toBe(status);
    }
    expect(await stack.dbs.accounts('data_access_log').where({ operation_name: 'Forged' })).toHaveLength(0);
  });
});

describe('layer 5: the internal audit route takes batches, each record bounded on its own', () => {
  const url = () => stack.subgraphs.accounts.url.replace(/\/graphql$/, '/internal/audit');
  const record = (operationName: string, extra: Record<string, unknown> = {}) => ({
    at: new Date().toISOString(),
    userId: null,
    purpose: null,
    client: null,
    operationName,
    operationHash: 'b'.repeat(64),
    coordinates: ['Account.mask'],
    decision: 'REFUSED',
    layer: 'gateway',
    requestId: null,
    ...extra,
  });
  const append = async (body: unknown) => {
    const text = JSON.stringify(body);
    return post(url(), text, await signInternal('accounts', 'audit', text));
  };

  it('appends every record of a batch, in order, and answers their ids', async () => {
    const res = await append({ records: [record('BatchA'), record('BatchB'), record('BatchC')] });
    expect(res.status).toBe(200);
    const ids = (JSON.parse(res.text) as { ids: number[] }).ids;
    const rows = await stack.dbs.accounts('data_access_log').whereIn('operation_name', ['BatchA', 'BatchB', 'BatchC']).orderBy('id');
    expect(rows.map((r: { operation_name: string }) => r.operation_name)).toEqual(['BatchA', 'BatchB', 'BatchC']);
    expect(rows.map((r: { id: number }) => Number(r.id))).toEqual(ids);
  });

  it('keeps every record of a batch when one is malformed: bounded, marked, never refused', async () => {
    const long = 'L'.repeat(300);
    const res = await append({ records: [record('HalfGood'), record(long, { decision: 'MAYBE', operationHash: 'nope', client: 7 })] });
    expect(res.status).toBe(200);
    const rows = (await stack.dbs
      .accounts('data_access_log')
      .whereIn('operation_name', ['HalfGood', long.slice(0, 200)])
      .orderBy('id')) as Record<string, unknown>[];
    expect(rows.map((r) => [r.operation_name, r.decision])).toEqual([
      ['HalfGood', 'REFUSED'],
      [long.slice(0, 200), 'REFUSED'],
    ]);
    expect(JSON.parse(String(rows[1]!.marks))).toEqual(['client:invalid', 'decision:invalid', 'operationHash:invalid', 'operationName:truncated']);
    expect(JSON.parse(String(rows[1]!.leaf))).toMatchObject({
      marks: ['client:invalid', 'decision:invalid', 'operationHash:invalid', 'operationName:truncated'],
    });
    // Too many records is a malformed request, not a malformed record: refused whole.
    expect((await append({ records: Array.from({ length: 501 }, () => record('TooMany')) })).status).toBe(400);
  });
});

describe('layer 4: payments-zone subgraphs refuse payment-only fields to non-payments callers', () => {
  const CASES: { name: SubgraphName; query: string; coordinates: string[] }[] = [
    { name: 'accounts', query: '{ me { id accounts { id mask } } }', coordinates: ['User.accounts', 'Account.mask'] },
    {
      name: 'accounts',
      query: '{ _entities(representations: [{ __typename: "Account", id: "acc_alice_checking" }]) { ... on Account { mask } } }',
      coordinates: ['Account.mask'],
    },
    {
      // A linked account is bank data as a whole: not even its name, kind or institution.
      name: 'accounts',
      query:
        '{ _entities(representations: [{ __typename: "Account", id: "acc_alice_checking" }]) { ... on Account { displayName kind institution { name } } } }',
      coordinates: ['Account.displayName', 'Account.institution', 'Account.kind'],
    },
    {
      name: 'accounts',
      query: '{ _entities(representations: [{ __typename: "User", id: "usr_alice" }]) { ... on User { dataAccessLog { totalCount } } } }',
      coordinates: ['User.dataAccessLog'],
    },
    { name: 'payments', query: PROBE.payments, coordinates: ['Account.balance', 'Balance.current'] },
    {
      name: 'payments',
      query: 'query($r: [_Any!]!) { _entities(representations: $r) { ...T } } fragment T on Account { transactions(first: 1) { totalCount } }',
      coordinates: ['Account.transactions', 'TransactionConnection.totalCount'],
    },
    { name: 'alerts', query: '{ chargeAlerts { id riskScore } }', coordinates: ['Query.chargeAlerts', 'ChargeAlert.riskScore'] },
  ];
  for (const c of CASES) {
    for (const purpose of ['advertising', null] as const) {
      it(`${c.name} (${purpose ?? 'anonymous'}): ${c.query.slice(0, 70)}`, async () => {
        const b = JSON.stringify({ query: c.query, variables: { r: [{ __typename: 'Account', id: 'acc_alice_checking' }] } });
        const r = await post(stack.subgraphs[c.name].url, b, await signGraphQL(c.name, alice(purpose), b));
        expectGraphQLError(r, 'FORBIDDEN_DATA_USE');
        expectForbiddenDataUse(r, c.coordinates);
      });
    }
    it(`${c.name} (payments): served`, async () => {
      const b = JSON.stringify({ query: c.query, variables: { r: [{ __typename: 'Account', id: 'acc_alice_checking' }] } });
      expectData(await post(stack.subgraphs[c.name].url, b, await signGraphQL(c.name, alice('payments'), b)));
    });
  }

  it('non-protected fields are still served to advertising callers (what Offers needs)', async () => {
    const b = JSON.stringify({ query: '{ me { id handle } }' });
    const r = await post(stack.subgraphs.accounts.url, b, await signGraphQL('accounts', alice('advertising'), b));
    expect(JSON.parse(r.text)).toEqual({ data: { me: { id: userId('alice'), handle: 'alice' } } });
  });
});
