/**
 * No service can act as another (lib/transport/signing.ts, docs/fence.md "Service signatures").
 * This file plays a hostile ads service holding exactly what the ads process holds: its own
 * private key and the gateway's public key. With them it can sign only as ads, and:
 *
 * (a) no payments-zone subgraph serves it GraphQL (401);
 * (b) a request the gateway really signed FOR ads, captured there, is refused by payments (the
 *     target is covered);
 * (c) no internal route accepts it (403), and nothing is returned or changed;
 * (d) alerts refuses its graphql-ws connection (4403) and its subscription grants (FORBIDDEN);
 * (e) while the genuine paths, signed by the real services, keep working.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS, type Caller } from '../../lib/auth.js';
import type { SubgraphName } from '../../lib/config.js';
import { callInternal, InternalCallError } from '../../lib/transport/internal-client.js';
import { serviceKeys, type ServiceKeys, type Signer } from '../../lib/transport/keys.js';
import { encodeCaller, signConnectionInit, signMessage } from '../../lib/transport/signing.js';
import { signersTrustedBy } from '../../subgraphs/definition.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { op } from '../helpers/contract.js';
import { connectAlertsDirect, grantExtensions, pay, raisedAlert, subscribe, SUSPICIOUS, waitForLive } from '../helpers/alerts.js';
import { expectData, expectGraphQLError } from '../helpers/matchers.js';
import { signerOf, signGraphQL } from '../helpers/signing.js';
import { postGraphQL, startTestStack, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
/** What the ads process is handed (runtime/stack.ts and runtime/service.ts hand it exactly this). */
let ads: ServiceKeys;
const alice: Caller = { userId: userId('alice'), purpose: 'payments', client: null };

beforeAll(async () => {
  stack = await startTestStack();
  ads = serviceKeys(stack.keys, 'ads', signersTrustedBy(SUBGRAPHS.ads));
});
afterAll(async () => {
  await stack?.stop();
});

const base = (name: SubgraphName) => stack.subgraphs[name].url.replace(/\/graphql$/, '');

/** A query each payments-zone subgraph would answer with real data if it accepted the request. */
const PROBE: Record<Exclude<SubgraphName, 'ads'>, string> = {
  accounts: '{ me { id handle accounts { id mask } } }',
  payments: `{ _entities(representations: [{ __typename: "Account", id: "acc_alice_checking" }]) { ... on Account { balance { current { amount } } } } }`,
  merchants: '{ merchants(first: 2) { id name } }',
  alerts: '{ chargeAlerts { id riskScore } }',
};
const PAYMENTS_ZONE = Object.keys(PROBE) as (keyof typeof PROBE)[];

it('the ads process holds its own private key and the gateway public key, nothing else', () => {
  expect(ads.self.type).toBe('private');
  expect(ads.self).toBe(stack.keys.ads);
  expect(Object.keys(ads.trust)).toEqual(['gateway']);
  expect(ads.trust.gateway!.type).toBe('public');
});

describe('(a) GraphQL signed by ads', () => {
  for (const name of PAYMENTS_ZONE) {
    it(`${name} refuses it with 401 and no data`, async () => {
      const body = JSON.stringify({ query: PROBE[name] });
      const r = await postGraphQL(stack.subgraphs[name].url, body, await signGraphQL(name, alice, body, { as: ads }));
      expectGraphQLError(r, 'UNAUTHENTICATED', { status: 401, noData: true });
      expect(r.errors![0]!.message).toMatch(/not signed by the gateway/);
    });
  }

  it('claiming to be the gateway does not help: its signature does not verify under the gateway key', async () => {
    const impostor: Signer = { service: 'gateway', self: ads.self };
    for (const name of PAYMENTS_ZONE) {
      const body = JSON.stringify({ query: PROBE[name] });
      const r = await postGraphQL(stack.subgraphs[name].url, body, await signGraphQL(name, alice, body, { as: impostor }));
      expectGraphQLError(r, 'UNAUTHENTICATED', { status: 401, noData: true });
    }
  });
});

describe('(b) a gateway request captured at ads', () => {
  it('is refused by payments (and by every other subgraph): it was signed for ads', async () => {
    // What reaches the ads service for a real operation through the gateway.
    const captured: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
    const capture = (req: http.IncomingMessage) => {
      if (req.url !== '/graphql') return;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => captured.push({ headers: req.headers, body: Buffer.concat(chunks) }));
    };
    stack.subgraphs.ads.server.on('request', capture);
    try {
      expectData(await stack.gql(op('Offers'), {}, await stack.token('alice', 'advertising')));
    } finally {
      stack.subgraphs.ads.server.off('request', capture);
    }
    expect(captured.length).toBeGreaterThan(0);
    const { headers, body } = captured[0]!;
    expect(headers['x-paygraph-target']).toBe('ads');
    expect(headers['signature-input']).toMatch(/keyid="gateway"/);
    const replayed = Object.fromEntries(
      ['content-type', 'content-digest', 'x-paygraph-caller', 'x-paygraph-target', 'signature', 'signature-input'].map((h) => [h, String(headers[h])]),
    );
    for (const name of PAYMENTS_ZONE) {
      const r = await postGraphQL(stack.subgraphs[name].url, body.toString('utf8'), replayed);
      expectGraphQLError(r, 'UNAUTHENTICATED', { status: 401, noData: true });
      expect(r.errors![0]!.message).toMatch(/signed for "ads", not for/);
    }
  });
});

describe('(c) internal calls signed by ads', () => {
  /** POSTs `body` to `<target>/internal/<route>` signed by `signer` for `target`. */
  const call = async (signer: Signer, target: SubgraphName, route: string, body: unknown) => {
    const text = JSON.stringify(body);
    const headers = await signMessage(signer, { method: 'POST', path: `/internal/${route}`, target, caller: encodeCaller(ANONYMOUS), body: text });
    const res = await fetch(`${base(target)}/internal/${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
    return { status: res.status, json: (await res.json()) as { errors?: { message: string; extensions?: { code?: string } }[] } & Record<string, unknown> };
  };
  /** Refused with `status`, a clear message naming the service, and nothing but the error. */
  const expectRefused = (r: Awaited<ReturnType<typeof call>>, status: number, message: RegExp) => {
    expect(r.status).toBe(status);
    expect(Object.keys(r.json)).toEqual(['errors']);
    expect(r.json.errors![0]!.extensions?.code).toBe(status === 403 ? 'FORBIDDEN' : 'UNAUTHENTICATED');
    expect(r.json.errors![0]!.message).toMatch(message);
  };
  const auditRecord = (operationName: string) => ({
    at: new Date().toISOString(),
    userId: null,
    purpose: null,
    client: null,
    operationName,
    operationHash: 'c'.repeat(64),
    coordinates: ['Account.mask'],
    decision: 'ALLOWED',
    layer: 'gateway',
    requestId: null,
  });
  const frozen = async (accountId: string) =>
    Boolean(((await stack.dbs.payments('ledger_accounts').where({ id: accountId }).first()) as { frozen: unknown }).frozen);

  it('payments /internal/events: 403, no events', async () => {
    const r = await call(ads, 'payments', 'events', { after: 0, limit: 100 });
    expectRefused(r, 403, /ads may not call this endpoint of payments \(it accepts alerts\)/);
  });

  it('payments /internal/freeze: 403, the account stays open', async () => {
    expect(await frozen('acc_dave_card')).toBe(false);
    expectRefused(await call(ads, 'payments', 'freeze', { accountId: 'acc_dave_card', alertId: 'alert_forged' }), 403, /ads may not call/);
    // Through the internal client, as the ads process would call it.
    const err = await callInternal(ads, 'payments', base('payments'), 'freeze', { accountId: 'acc_dave_card', alertId: 'alert_forged' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InternalCallError);
    expect((err as InternalCallError).status).toBe(403);
    expect(await frozen('acc_dave_card')).toBe(false);
  });

  it('accounts /internal/audit: 403, no record appended', async () => {
    const before = await stack.dbs.accounts('data_access_log').count({ n: '*' });
    expectRefused(await call(ads, 'accounts', 'audit', auditRecord('ForgedByAds')), 403, /ads may not call this endpoint of accounts \(it accepts gateway\)/);
    expectRefused(await call(ads, 'accounts', 'audit', { records: [auditRecord('ForgedByAds')] }), 403, /ads may not call/);
    expect(await stack.dbs.accounts('data_access_log').where({ operation_name: 'ForgedByAds' })).toHaveLength(0);
    expect(await stack.dbs.accounts('data_access_log').count({ n: '*' })).toEqual(before);
  });

  it('alerts /internal/status: 403, no status', async () => {
    const r = await call(ads, 'alerts', 'status', {});
    expectRefused(r, 403, /ads may not call this endpoint of alerts/);
    expect(JSON.stringify(r.json)).not.toContain('consumer');
  });

  it('the ads key under another service name is 401 (the signature does not verify)', async () => {
    const impostor: Signer = { service: 'alerts', self: ads.self };
    expectRefused(
      await call(impostor, 'payments', 'freeze', { accountId: 'acc_dave_card', alertId: 'alert_forged' }),
      401,
      /not signed by a service it accepts/,
    );
    expect(await frozen('acc_dave_card')).toBe(false);
  });

  it('each route has its own list: the gateway may append audit records but not freeze accounts', async () => {
    expectRefused(await call(signerOf('gateway'), 'payments', 'freeze', { accountId: 'acc_dave_card', alertId: 'alert_forged' }), 403, /gateway may not call/);
    expect(await frozen('acc_dave_card')).toBe(false);
  });
});

describe('(d) a graphql-ws connection to alerts signed by ads', () => {
  it('is refused with 4403', async () => {
    const closed = await connectAlertsDirect(stack, await signConnectionInit(ads, 'alerts'));
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/ads may not call/);
  });

  it('a connection_init the gateway signed for ads is refused with 4403 too (signed for another target)', async () => {
    const closed = await connectAlertsDirect(stack, await signConnectionInit(signerOf('gateway'), 'ads'));
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/signed for "ads"/);
  });

  it('a subscription granted by ads, on a connection the gateway opened, is refused (FORBIDDEN)', async () => {
    const query = 'subscription { chargeAlertRaised { id } }';
    const r = await connectAlertsDirect(stack, await signConnectionInit(signerOf('gateway'), 'alerts'), {
      query,
      extensions: await grantExtensions(ads, alice, { query }),
    });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toMatch(/ads may not call/);
  });
});

describe('(e) the genuine paths still work', () => {
  it('a query through the gateway (gateway-signed fetches, audit appended by the gateway)', async () => {
    const token = await stack.token('alice');
    const before = await stack.dbs.accounts('data_access_log').count({ n: '*' });
    const r = await stack.gql<{ me: { accounts: { mask: string }[] } }>(op('MyBalances'), {}, token);
    expect(expectData(r).me.accounts.length).toBeGreaterThan(0);
    expect(await stack.dbs.accounts('data_access_log').count({ n: '*' })).not.toEqual(before);
  });

  it('an alert reaches its subscriber (alerts reads the payments feed as itself; gateway-signed graphql-ws)', async () => {
    const token = await stack.token('alice');
    const sub = subscribe(stack, token, op('ChargeAlerts'));
    try {
      await waitForLive(stack, 1);
      const made = await pay(stack, token, { accountId: 'acc_alice_card', ...SUSPICIOUS });
      expect(made.userErrors).toEqual([]);
      expect(raisedAlert(await sub.next()).purchase.id).toBe(made.purchase!.id);
    } finally {
      await sub.dispose();
    }
  });
});
