/**
 * Bank oversight through the gateway (docs/consent.md): an institution's `oversight` credential
 * sees its own customers' consents under a stable per-institution pseudonym, the data-access
 * records concerning them and their counts, and nothing else: no mask, balance, transaction or
 * another bank's data (refused and audited, at the gateway and in the subgraph); an unknown
 * institution is UNAUTHENTICATED; every other caller gets null or a validation error (for it the view does not exist).
 */
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture } from '../../seeds/fixture.js';
import { oversightToken } from '../helpers/consent.js';
import { op } from '../helpers/contract.js';
import { openCheckpoint, parseVerifierKey } from '../../lib/transparency/checkpoint.js';
import { leafBytes, subjectCommitment } from '../../lib/transparency/leaf.js';
import { leafHash, verifyInclusion } from '../../lib/transparency/merkle.js';
import { expectData, expectForbiddenDataUse, expectGraphQLError, expectUnseen } from '../helpers/matchers.js';
import { signGraphQL } from '../helpers/signing.js';
import { postGraphQL, startTestStack, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let chase: string;
beforeAll(async () => {
  stack = await startTestStack();
  chase = await oversightToken('ins_chase');
  // Some traffic to oversee: alice (a Chase customer) reads her accounts.
  expectData(await stack.gql(op('MyBalances'), {}, await stack.token('alice')));
  expectData(await stack.gql(op('MyBalances'), {}, await stack.token('bob')));
});
afterAll(async () => {
  await stack?.stop();
});

interface OversightOut {
  oversight: {
    institution: { id: string; name: string };
    consents: {
      edges: { cursor: string; node: { id: string; customer: string; scopes: string[]; purpose: string; status: string; grantedAt: string } }[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
    summary: { purpose: string | null; decision: string; count: number }[];
  } | null;
}
interface AccessOut {
  oversight: {
    accessRecords: {
      edges: {
        node: {
          id: string;
          customer: string | null;
          purpose: string | null;
          operationName: string | null;
          coordinates: string[];
          decision: string;
          layer: string;
          institutions: string[];
          leafIndex: number | null;
          salt: string | null;
        };
      }[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
  } | null;
}

describe('a bank sees its own customers, pseudonymously', () => {
  it("lists its customers' consents under a stable pseudonym, never a user id or name", async () => {
    const r = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 10 }, chase)).oversight!;
    expect(r.institution).toEqual({ id: 'ins_chase', name: 'JPMorgan Chase' });
    const seeded = buildFixture().consents.filter((c) => c.institutionId === 'ins_chase');
    expect(r.consents.edges.map((e) => e.node.id).sort()).toEqual(seeded.map((c) => c.id).sort());
    const node = r.consents.edges[0]!.node;
    expect(node).toMatchObject({ purpose: 'PAYMENTS', status: 'ACTIVE', scopes: ['ACCOUNT_DETAILS', 'BALANCES', 'MONEY_MOVEMENT', 'TRANSACTIONS'] });
    expect(node.customer).toMatch(/^cus_[A-Za-z0-9_-]{22}$/);
    const text = JSON.stringify(r);
    for (const u of buildFixture().users) for (const s of [u.id, u.handle, u.name]) expect(text).not.toContain(s);
    // Stable: the same pseudonym on every read.
    const again = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 10 }, chase)).oversight!;
    expect(again.consents.edges[0]!.node.customer).toBe(node.customer);
  });

  it('the same customer has another pseudonym at another bank', async () => {
    // alice banks with Chase and holds an Amex card.
    const amex = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 10 }, await oversightToken('ins_amex'))).oversight!;
    const chaseView = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 10 }, chase)).oversight!;
    const chaseCustomers = new Set(chaseView.consents.edges.map((e) => e.node.customer));
    expect(amex.consents.edges.length).toBe(2); // alice and dave
    for (const e of amex.consents.edges) expect(chaseCustomers.has(e.node.customer)).toBe(false);
  });

  it('pages its consents with first/after', async () => {
    const p1 = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 1 }, await oversightToken('ins_amex'))).oversight!.consents;
    expect(p1.edges).toHaveLength(1);
    expect(p1.pageInfo.hasNextPage).toBe(true);
    const p2 = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 1, after: p1.pageInfo.endCursor }, await oversightToken('ins_amex')))
      .oversight!.consents;
    expect(p2.edges).toHaveLength(1);
    expect(p2.edges[0]!.node.id).not.toBe(p1.edges[0]!.node.id);
    expect(p2.pageInfo.hasNextPage).toBe(false);
  });

  it("lists the access records that concern its customers' accounts, and counts them", async () => {
    const r = expectData(await stack.gql<AccessOut>(op('OversightAccess'), { first: 100 }, chase)).oversight!.accessRecords;
    const nodes = r.edges.map((e) => e.node);
    const aliceRead = nodes.find((n) => n.operationName === 'MyBalances');
    expect(aliceRead).toMatchObject({ purpose: 'payments', decision: 'ALLOWED', layer: 'gateway' });
    expect(aliceRead!.customer).toMatch(/^cus_/);
    // Seeded grants of its customers (alice) name it; bob (Wells Fargo, PayPal) is none of its business.
    expect(nodes.some((n) => n.layer === 'consent-grant' && n.institutions.join() === 'ins_chase')).toBe(true);
    expect(nodes.every((n) => n.institutions.every((i) => i === 'ins_chase'))).toBe(true);
    const customers = new Set(nodes.map((n) => n.customer).filter(Boolean));
    expect(customers.size).toBe(1);
    // Each record is a leaf of the transparency log; with the salt the bank recomputes the leaf's
    // subject for its customer (whom it knows) and checks the leaf's inclusion against a signed checkpoint.
    const vkey = parseVerifierKey(await (await fetch(`${stack.url.replace(/\/graphql$/, '')}/audit/key`)).text());
    const checkpoint = openCheckpoint(await (await fetch(`${stack.url.replace(/\/graphql$/, '')}/audit/checkpoint`)).text(), vkey);
    const mine = nodes.filter((n) => n.operationName === 'MyBalances');
    expect(mine.length).toBeGreaterThan(0);
    let verified = 0;
    for (const n of mine) {
      expect(Number.isInteger(n.leafIndex)).toBe(true);
      if (n.leafIndex! >= checkpoint.size) continue; // logged after that checkpoint
      const entries = (await (await fetch(`${stack.url.replace(/\/graphql$/, '')}/audit/entries?start=${n.leafIndex}&end=${n.leafIndex! + 1}`)).json()) as {
        entries: { leaf: string }[];
      };
      const leaf = entries.entries[0]!.leaf;
      expect((JSON.parse(leaf) as { subject: string }).subject).toBe(subjectCommitment(n.salt!, userId('alice')));
      const proof = (await (
        await fetch(`${stack.url.replace(/\/graphql$/, '')}/audit/proof/inclusion?index=${n.leafIndex}&size=${checkpoint.size}`)
      ).json()) as { hashes: string[] };
      const hashes = proof.hashes.map((h) => new Uint8Array(Buffer.from(h, 'base64')));
      expect(verifyInclusion(n.leafIndex!, checkpoint.size, leafHash(leafBytes(leaf)), hashes, checkpoint.root)).toBe(true);
      verified += 1;
    }
    expect(verified).toBeGreaterThan(0);
    const summary = expectData(await stack.gql<OversightOut>(op('Oversight'), { first: 1 }, chase)).oversight!.summary;
    expect(summary.find((s) => s.purpose === 'payments' && s.decision === 'ALLOWED')!.count).toBeGreaterThanOrEqual(
      nodes.filter((n) => n.purpose === 'payments' && n.decision === 'ALLOWED').length,
    );
    for (const s of summary) expect(Number.isInteger(s.count)).toBe(true);
  });
});

describe('a bank sees nothing else', () => {
  const attempts: [string, string, string[]][] = [
    ['masks', 'query Peek { me { accounts { mask } } }', ['Account.mask', 'User.accounts']],
    ['an account by id', 'query PeekAccount { account(id: "acc_alice_checking") { id } }', ['Query.account']],
    ['balances', 'query PeekBalance { account(id: "acc_alice_checking") { balance { current { amount } } } }', ['Account.balance']],
    ['history', 'query PeekHistory { account(id: "acc_alice_checking") { transactions { edges { node { id } } } } }', ['Account.transactions']],
    ["a user's own log", 'query PeekLog { me { dataAccessLog { totalCount } } }', ['User.dataAccessLog']],
    ['oversight mixed with bank data', 'query Mixed { oversight { institution { id } } account(id: "acc_alice_checking") { mask } }', ['Account.mask']],
    ['moving money', 'mutation Move { revokeConsent(input: { consentId: "cns_any" }) { userErrors { code } } }', ['Mutation.revokeConsent']],
  ];
  for (const [what, query, coordinates] of attempts) {
    it(`${what}: refused as if it did not exist (its contract schema is its own view) and audited with the institution`, async () => {
      expectUnseen(await stack.gql(query, {}, chase));
      void coordinates;
      const name = /(?:query|mutation) (\w+)/.exec(query)![1]!;
      const rows = (await stack.dbs.accounts('data_access_log').where({ operation_name: name })) as {
        purpose: string;
        decision: string;
        institutions: string;
        user_id: string | null;
      }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ purpose: 'oversight', decision: 'REFUSED', institutions: '["ins_chase"]', user_id: null });
    });
  }

  it('the accounts subgraph refuses it too when the gateway is bypassed (layer 4)', async () => {
    const body = JSON.stringify({ query: '{ _entities(representations: [{ __typename: "Account", id: "acc_alice_checking" }]) { ... on Account { mask } } }' });
    const caller = { userId: null, purpose: 'oversight' as const, client: null, institutionId: 'ins_chase' };
    const r = await postGraphQL(stack.subgraphs.accounts.url, body, await signGraphQL('accounts', caller, body));
    expectForbiddenDataUse(r, ['Account.mask']);
    expect(r.text).not.toContain('4821');
  });

  it("its introspection shows its own view and no bank data; an advertising caller's shows neither", async () => {
    const types = async (token: string) =>
      new Set(expectData(await stack.gql<{ __schema: { types: { name: string }[] } }>(getIntrospectionQuery(), {}, token)).__schema.types.map((t) => t.name));
    const mine = await types(chase);
    expect(mine.has('Oversight')).toBe(true);
    expect(mine.has('OversightAccessRecord')).toBe(true);
    for (const hidden of ['Account', 'Balance', 'Transaction', 'Consent', 'DataAccessRecord']) expect(mine.has(hidden), hidden).toBe(false);
    const ads = await types(await stack.token('alice', 'advertising'));
    expect(ads.has('Oversight')).toBe(false);
  });
});

describe('who gets oversight', () => {
  it('an oversight credential for an unknown institution is UNAUTHENTICATED', async () => {
    const r = await stack.gql<OversightOut>(op('Oversight'), {}, await oversightToken('ins_nope'));
    expectGraphQLError(r, 'UNAUTHENTICATED');
    expect(r.data?.oversight ?? null).toBeNull();
  });

  it('a payments user gets null; an advertising or anonymous caller is refused', async () => {
    expect(expectData(await stack.gql<OversightOut>(op('Oversight'), {}, await stack.token('alice'))).oversight).toBeNull();
    expectUnseen(await stack.gql(op('Oversight'), {}, await stack.token('alice', 'advertising')));
    expectUnseen(await stack.gql(op('Oversight'), {}, null));
  });

  it('an oversight token without an institution claim is refused at authentication', async () => {
    const { SignJWT } = await import('jose');
    const { TEST_JWT_SECRET } = await import('../helpers/stack.js');
    const bare = await new SignJWT({ purpose: 'oversight' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('institution:ins_chase')
      .setIssuer('paygraph')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expectGraphQLError(await stack.gql(op('Oversight'), {}, bare), 'UNAUTHENTICATED', { status: 401 });
  });
});
