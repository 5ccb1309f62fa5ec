/**
 * The verified identity in the audit (issue #13, "kept apart from the verified identity"): every
 * record names the token's subject, purpose, issuer and credential client id as the gateway
 * verified them, beside the `client` name and request id the caller merely declared; the public
 * leaf (format 2) carries the issuer and client id but never the declared values. Records the
 * subgraphs write themselves (consent decisions) name the same verified identity.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretVerifier, signToken } from '../../lib/auth.js';
import { startTestStack, TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';

const ISSUER = 'https://id.messenger.example';
let stack: TestStack;

interface LogNode {
  operationName: string | null;
  layer: string;
  decision: string;
  issuer: string | null;
  clientId: string | null;
  client: string | null;
  requestId: string | null;
  leaf: string;
}

const LOG = `query Log { me { dataAccessLog(first: 20) { edges { node { operationName layer decision issuer clientId client requestId leaf } } } } }`;

const mint = (handle: string, clientId?: string) =>
  signToken(TEST_JWT_SECRET, userId(handle), 'payments', '1h', { issuer: ISSUER, ...(clientId ? { clientId } : {}) });

/** A payments token for bob with claims of its own (what signToken does not mint: `azp`, a malformed `client_id`). */
const bobWith = (claims: Record<string, unknown>) =>
  new SignJWT({ purpose: 'payments', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId('bob'))
    .setIssuer(ISSUER)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));

async function logOf(handle: string): Promise<LogNode[]> {
  const res = await stack.gql<{ me: { dataAccessLog: { edges: { node: LogNode }[] } } }>(LOG, {}, await mint(handle, 'paygraph-test'));
  expect(res.errors, res.text).toBeUndefined();
  return res.data!.me.dataAccessLog.edges.map((e) => e.node);
}

beforeAll(async () => {
  stack = await startTestStack({ tokenVerifier: secretVerifier(TEST_JWT_SECRET, { issuer: ISSUER }) });
});
afterAll(async () => stack?.stop());

describe('the verified identity of each record', () => {
  it('keeps the issuer and client_id verified, apart from the declared client name and request id', async () => {
    const res = await stack.gql('query Wallet { me { accounts { id mask } } }', {}, await mint('alice', 'messenger-ios'), {
      'apollographql-client-name': 'messenger-android',
      'x-request-id': 'declared-request-1',
    });
    expect(res.errors, res.text).toBeUndefined();
    const node = (await logOf('alice')).find((n) => n.operationName === 'Wallet')!;
    expect(node).toMatchObject({
      issuer: ISSUER,
      clientId: 'messenger-ios',
      client: 'messenger-android',
      requestId: 'declared-request-1',
      decision: 'ALLOWED',
    });
    const leaf = JSON.parse(node.leaf) as Record<string, unknown>;
    expect(leaf).toMatchObject({ v: 2, issuer: ISSUER, clientId: 'messenger-ios' });
    // What the caller declared stays out of the public log.
    expect(node.leaf).not.toContain('messenger-android');
    expect(node.leaf).not.toContain('declared-request-1');
  });

  it("takes OpenID's azp when the token has no client_id, and null when it names neither", async () => {
    const azp = await bobWith({ azp: 'messenger-web' });
    expect((await stack.gql('query ByAzp { me { accounts { mask } } }', {}, azp)).status).toBe(200);
    expect((await stack.gql('query NoClient { me { accounts { mask } } }', {}, await mint('bob'))).status).toBe(200);
    const log = await logOf('bob');
    expect(log.find((n) => n.operationName === 'ByAzp')).toMatchObject({ issuer: ISSUER, clientId: 'messenger-web' });
    expect(log.find((n) => n.operationName === 'NoClient')).toMatchObject({ issuer: ISSUER, clientId: null });
  });

  it('refuses a token whose client_id is malformed instead of logging no credential', async () => {
    const bad = await bobWith({ client_id: 'has spaces' });
    const res = await stack.gql('{ me { accounts { mask } } }', {}, bad);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.errors?.[0]?.message).toMatch(/client_id/);
  });

  it("names the same identity in the consent refusals the subgraphs record (dave's revoked consent)", async () => {
    const res = await stack.gql<{ account: { balance: unknown } | null }>(
      'query DaveBalance($id: ID!) { account(id: $id) { id balance { current { amount } } } }',
      { id: 'acc_dave_checking' },
      await mint('dave', 'messenger-ios'),
      { 'apollographql-client-name': 'declared-name' },
    );
    expect(res.errors?.map((e) => e.extensions?.code)).toContain('CONSENT_REQUIRED');
    const consent = (await logOf('dave')).filter((n) => n.layer === 'consent' && n.decision === 'REFUSED');
    expect(consent.length).toBeGreaterThan(0);
    for (const n of consent) {
      expect(n).toMatchObject({ issuer: ISSUER, clientId: 'messenger-ios', client: 'declared-name' });
      expect(JSON.parse(n.leaf)).toMatchObject({ v: 2, issuer: ISSUER, clientId: 'messenger-ios' });
    }
  });

  it('names no issuer for an anonymous refused attempt', async () => {
    const before = Number((await (await fetch(`${new URL(stack.url).origin}/audit/checkpoint`)).text()).split('\n')[1]);
    expect((await stack.gql('query Anon { me { accounts { mask } } }', {}, null, { 'apollographql-client-name': 'someone' })).status).toBe(400);
    const origin = new URL(stack.url).origin;
    const after = Number((await (await fetch(`${origin}/audit/checkpoint`)).text()).split('\n')[1]);
    const { entries } = (await (await fetch(`${origin}/audit/entries?start=${before}&end=${after}`)).json()) as { entries: { leaf: string }[] };
    const anon = entries.map((e) => JSON.parse(e.leaf) as Record<string, unknown>).find((l) => l.operationName === 'Anon');
    expect(anon).toMatchObject({ v: 2, subject: null, purpose: null, issuer: null, clientId: null });
  });
});
