/**
 * Consent through the gateway, like a client (docs/consent.md): the disclosure, granting with every
 * bad input (nothing stored), idempotency, reading, revoking (twice, another user's, with an
 * advertising token), enforcement on every consent-bound field and movement (in the subgraph that
 * owns it, also when the gateway is bypassed), an operation racing a revocation, expiry between two
 * pages of history with no job, and the audit records of all of it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { REVOKED_SEED_CONSENT } from '../../seeds/fixture.js';
import {
  ALL_SCOPES,
  activeConsent,
  disclosureVersion,
  DISCLOSURE,
  expectConsentRequired,
  grant,
  GRANT,
  myConsents,
  revoke,
  REVOKE,
} from '../helpers/consent.js';
import { op } from '../helpers/contract.js';
import { expectData, expectNothingMoved, expectUnseen, expectUserErrors } from '../helpers/matchers.js';
import { balanceOf, newKey, pay, send } from '../helpers/money.js';
import { signGraphQL } from '../helpers/signing.js';
import { postGraphQL, startTestStack, TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let alice: string;
let bob: string;
let version: string;
const gql = <T>(q: string, v?: Record<string, unknown>, t?: string | null) => stack.gql<T>(q, v, t);

beforeAll(async () => {
  stack = await startTestStack();
  [alice, bob] = await Promise.all([stack.token('alice'), stack.token('bob')]);
  version = await disclosureVersion(gql, alice, 'ins_chase');
});
afterAll(async () => {
  await stack?.stop();
});

const consentRows = async () => Number(((await stack.dbs.accounts('consents').count({ n: '*' }).first()) as { n: number | string }).n);
const BALANCE = 'query Bal($id: ID!) { account(id: $id) { id kind mask displayName balance { current { amount } } } }';

describe('the disclosure', () => {
  it('says who gets what, for what purpose, for how long and how to revoke, with a version', async () => {
    const d = expectData(
      await gql<{ consentDisclosure: { institution: { name: string }; version: string; text: string; maxDurationDays: number } }>(
        DISCLOSURE,
        { institutionId: 'ins_chase' },
        alice,
      ),
    ).consentDisclosure;
    expect(d.institution.name).toBe('JPMorgan Chase');
    expect(d.maxDurationDays).toBe(365);
    expect(d.version).toMatch(/\S/);
    for (const words of [/JPMorgan Chase/, /balances/, /never used for advertising/, /365 days/, /revoke/i]) expect(d.text).toMatch(words);
    expect(expectData(await gql<{ consentDisclosure: null }>(DISCLOSURE, { institutionId: 'ins_nope' }, alice)).consentDisclosure).toBeNull();
  });

  it('is payment-only: an advertising token is refused', async () => {
    expectUnseen(await gql(DISCLOSURE, { institutionId: 'ins_chase' }, await stack.token('alice', 'advertising')));
  });
});

describe('grantConsent refuses bad input and stores nothing', () => {
  const base = () => ({ institutionId: 'ins_chase', scopes: ['BALANCES'], durationDays: 30, disclosureVersion: version });
  const cases: { name: string; input: () => Record<string, unknown>; code: string; field: string[] }[] = [
    { name: '0 days', input: () => ({ ...base(), durationDays: 0 }), code: 'INVALID_DURATION', field: ['input', 'durationDays'] },
    { name: '366 days', input: () => ({ ...base(), durationDays: 366 }), code: 'INVALID_DURATION', field: ['input', 'durationDays'] },
    { name: 'a huge number of days', input: () => ({ ...base(), durationDays: 2_147_483_647 }), code: 'INVALID_DURATION', field: ['input', 'durationDays'] },
    { name: 'negative days', input: () => ({ ...base(), durationDays: -5 }), code: 'INVALID_DURATION', field: ['input', 'durationDays'] },
    { name: 'no scope', input: () => ({ ...base(), scopes: [] }), code: 'SCOPES_EMPTY', field: ['input', 'scopes'] },
    {
      name: 'a scope twice',
      input: () => ({ ...base(), scopes: ['BALANCES', 'TRANSACTIONS', 'BALANCES'] }),
      code: 'SCOPES_DUPLICATED',
      field: ['input', 'scopes'],
    },
    {
      name: 'an unknown institution',
      input: () => ({ ...base(), institutionId: 'ins_nope' }),
      code: 'INSTITUTION_NOT_FOUND',
      field: ['input', 'institutionId'],
    },
    {
      name: 'an institution without an account of hers',
      input: () => ({ ...base(), institutionId: 'ins_citi' }),
      code: 'NO_LINKED_ACCOUNT',
      field: ['input', 'institutionId'],
    },
    {
      name: 'a disclosure the server does not publish',
      input: () => ({ ...base(), disclosureVersion: '1999-01-01' }),
      code: 'DISCLOSURE_VERSION_UNKNOWN',
      field: ['input', 'disclosureVersion'],
    },
    {
      name: 'an over-long idempotency key',
      input: () => ({ ...base(), idempotencyKey: 'k'.repeat(256) }),
      code: 'INVALID_INPUT',
      field: ['input', 'idempotencyKey'],
    },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.code}`, async () => {
      const before = await consentRows();
      const out = await grant(gql, alice, c.input());
      expectUserErrors(out as never, [c.code], { field: c.field });
      expect(await consentRows()).toBe(before);
    });
  }

  it('an unknown scope or more days than an Int holds never reach the resolver: coded input errors, nothing stored', async () => {
    const before = await consentRows();
    for (const input of [
      { ...base(), scopes: ['BALANCES', 'EVERYTHING'] },
      { ...base(), durationDays: 2 ** 40 },
    ]) {
      const r = await gql(GRANT, { input: { ...input, idempotencyKey: newKey() } }, alice);
      expect(r.data ?? null).toBeNull();
      expect(['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED']).toContain(r.errors?.[0]?.extensions?.code);
    }
    expect(await consentRows()).toBe(before);
  });
});

describe('grant, read, revoke', () => {
  it('grants with the same key once (a retry returns the same consent), and refuses the key for another input', async () => {
    const key = newKey();
    const input = { institutionId: 'ins_amex', scopes: ['TRANSACTIONS', 'BALANCES'], durationDays: 90, disclosureVersion: version, idempotencyKey: key };
    const first = await grant(gql, alice, input);
    expect(first.userErrors).toEqual([]);
    expect(first.consent).toMatchObject({
      institution: { id: 'ins_amex' },
      scopes: ['BALANCES', 'TRANSACTIONS'],
      purpose: 'PAYMENTS',
      status: 'ACTIVE',
      revokedAt: null,
      disclosureVersion: version,
    });
    expect(Date.parse(first.consent!.expiresAt) - Date.parse(first.consent!.grantedAt)).toBe(90 * 86_400_000);
    const again = await grant(gql, alice, { ...input, scopes: ['BALANCES', 'TRANSACTIONS'] });
    expect(again.consent!.id).toBe(first.consent!.id);
    expectUserErrors((await grant(gql, alice, { ...input, durationDays: 91 })) as never, ['IDEMPOTENCY_KEY_REUSED']);
    // The same key is another user's own.
    expect((await grant(gql, bob, { ...input, institutionId: 'ins_paypal' })).userErrors).toEqual([]);
    expect((await myConsents(gql, alice)).filter((c) => c.id === first.consent!.id)).toHaveLength(1);
  });

  it('revoking takes effect on the next operation: fields null with CONSENT_REQUIRED, the rest answers, no money moves', async () => {
    const consent = await activeConsent(gql, alice, 'ins_chase');
    const before = expectData(await gql<{ account: { mask: string; balance: unknown } }>(BALANCE, { id: 'acc_alice_checking' }, alice));
    expect(before.account.mask).toBe('4821');

    const out = await revoke(gql, alice, consent.id);
    expect(out.userErrors).toEqual([]);
    expect(out.consent).toMatchObject({ id: consent.id, status: 'REVOKED' });
    expect(Date.parse(out.consent!.revokedAt!)).toBeGreaterThan(0);

    const r = await gql<{ me: { accounts: { id: string; mask: string | null; displayName: string | null; balance: unknown; institution: { id: string } }[] } }>(
      op('MyBalances'),
      {},
      alice,
    );
    const accounts = r.data!.me.accounts;
    const checking = accounts.find((a) => a.id === 'acc_alice_checking')!;
    const card = accounts.find((a) => a.id === 'acc_alice_card')!;
    expect(checking).toMatchObject({ mask: null, displayName: null, balance: null, institution: { id: 'ins_chase' } });
    const i = accounts.indexOf(checking);
    expectConsentRequired(r, `me.accounts.${i}.mask`, 'ins_chase', 'ACCOUNT_DETAILS');
    expectConsentRequired(r, `me.accounts.${i}.displayName`, 'ins_chase', 'ACCOUNT_DETAILS');
    expectConsentRequired(r, `me.accounts.${i}.balance`, 'ins_chase', 'BALANCES');
    // The other institution's account still answers.
    expect(card.mask).toBe('1007');
    expect(card.balance).not.toBeNull();
    expect(r.errors!.every((e) => e.path?.[2] === i)).toBe(true);

    const h = await gql<{ account: { transactions: unknown } }>(op('History'), { accountId: 'acc_alice_checking', first: 5 }, alice);
    expect(h.data!.account.transactions).toBeNull();
    expectConsentRequired(h, 'account.transactions', 'ins_chase', 'TRANSACTIONS');

    const transfer = await expectNothingMoved(stack.dbs.payments, () =>
      send(stack, alice, { fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: newKey() }),
    );
    expectUserErrors(transfer as never, ['CONSENT_REQUIRED'], { field: ['input', 'fromAccountId'] });
    const purchase = await expectNothingMoved(stack.dbs.payments, () =>
      pay(stack, alice, { accountId: 'acc_alice_checking', merchantId: 'mer_safeway', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: newKey() }),
    );
    expectUserErrors(purchase as never, ['CONSENT_REQUIRED'], { field: ['input', 'accountId'] });
    // Money may still leave her other institution's card.
    expect(
      (
        await pay(stack, alice, {
          accountId: 'acc_alice_card',
          merchantId: 'mer_safeway',
          amount: { amount: '1.00', currency: 'USD' },
          idempotencyKey: newKey(),
        })
      ).userErrors,
    ).toEqual([]);

    // Revoking twice: the second says so, and nothing new is stored.
    const events = await stack.dbs.accounts('consent_events').count({ n: '*' }).first();
    expectUserErrors((await revoke(gql, alice, consent.id)) as never, ['CONSENT_ALREADY_REVOKED']);
    expect(await stack.dbs.accounts('consent_events').count({ n: '*' }).first()).toEqual(events);

    // A new grant brings the data back.
    expect(
      (await grant(gql, alice, { institutionId: 'ins_chase', scopes: [...ALL_SCOPES], durationDays: 365, disclosureVersion: version })).userErrors,
    ).toEqual([]);
    expect(expectData(await gql<{ account: { mask: string } }>(BALANCE, { id: 'acc_alice_checking' }, alice)).account.mask).toBe('4821');
  });

  it('a consent covers only its scopes', async () => {
    const carol = await stack.token('carol');
    const seeded = await activeConsent(gql, carol, 'ins_citi');
    expect((await revoke(gql, carol, seeded.id)).userErrors).toEqual([]);
    expect((await grant(gql, carol, { institutionId: 'ins_citi', scopes: ['BALANCES'], durationDays: 7, disclosureVersion: version })).userErrors).toEqual([]);
    const r = await gql<{ account: { mask: string | null; balance: unknown } }>(BALANCE, { id: 'acc_carol_checking' }, carol);
    expect(r.data!.account.balance).not.toBeNull();
    expect(r.data!.account.mask).toBeNull();
    expectConsentRequired(r, 'account.mask', 'ins_citi', 'ACCOUNT_DETAILS');
    expect(r.errors!.map((e) => e.path?.join('.')).sort()).toEqual(['account.displayName', 'account.mask']);
  });

  it("revoking another user's consent is NOT_FOUND, an unknown one too; an advertising token does not see it exists", async () => {
    const bobs = await activeConsent(gql, bob, 'ins_wells_fargo');
    expectUserErrors((await revoke(gql, alice, bobs.id)) as never, ['NOT_FOUND'], { field: ['input', 'consentId'] });
    expectUserErrors((await revoke(gql, alice, 'cns_nope')) as never, ['NOT_FOUND']);
    expectUnseen(await gql(REVOKE, { input: { consentId: bobs.id } }, await stack.token('bob', 'advertising')));
    expectUnseen(await gql(REVOKE, { input: { consentId: bobs.id } }, null));
    expect((await activeConsent(gql, bob, 'ins_wells_fargo')).id).toBe(bobs.id);
  });

  it("only the user themself reads their consents; the seeds show dave's revoked one", async () => {
    const dave = await stack.token('dave');
    const consents = await myConsents(gql, dave);
    const revoked = consents.find((c) => c.institution.id === REVOKED_SEED_CONSENT.institutionId)!;
    expect(revoked).toMatchObject({ status: 'REVOKED', revokedAt: REVOKED_SEED_CONSENT.revokedAt, grantedAt: '2026-07-01T00:00:00.000Z' });
    expect(consents.find((c) => c.institution.id === 'ins_amex')).toMatchObject({ status: 'ACTIVE', expiresAt: '2027-07-01T00:00:00.000Z' });
    const r = await gql<{ account: { mask: string | null } }>(BALANCE, { id: 'acc_dave_checking' }, dave);
    expectConsentRequired(r, 'account.mask', REVOKED_SEED_CONSENT.institutionId, 'ACCOUNT_DETAILS');
    expectUnseen(await gql(op('MyConsents'), {}, await stack.token('dave', 'advertising')));
  });
});

describe('every layer: the owning subgraphs enforce consent themselves', () => {
  it('a gateway-signed request straight to payments or accounts gets CONSENT_REQUIRED for a revoked account', async () => {
    const caller = { userId: userId('dave'), purpose: 'payments' as const, client: null };
    for (const [name, query] of [
      [
        'payments',
        '{ _entities(representations: [{ __typename: "Account", id: "acc_dave_checking" }]) { ... on Account { balance { current { amount } } } } }',
      ],
      ['accounts', '{ _entities(representations: [{ __typename: "Account", id: "acc_dave_checking" }]) { ... on Account { mask } } }'],
    ] as const) {
      const body = JSON.stringify({ query });
      const r = await postGraphQL<{ _entities: unknown[] }>(stack.subgraphs[name].url, body, {
        'content-type': 'application/json',
        ...(await signGraphQL(name, caller, body)),
      });
      expect(r.errors?.[0]?.extensions, name).toMatchObject({ code: 'CONSENT_REQUIRED', institutionId: 'ins_us_bancorp' });
      expect(JSON.stringify(r.data)).not.toMatch(/\d+\.\d\d|"\d{4}"/);
    }
  });

  it("the consent route is the payments service's alone: the gateway's signature is refused", async () => {
    const { signInternal } = await import('../helpers/signing.js');
    const body = JSON.stringify({
      userId: userId('dave'),
      client: null,
      requestId: null,
      operationHash: '0'.repeat(64),
      checks: [{ accountId: 'acc_dave_card', coordinate: 'Account.balance' }],
    });
    const url = stack.subgraphs.accounts.url.replace(/\/graphql$/, '/internal/consent');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await signInternal('accounts', 'consent', body, { as: 'gateway' })) },
      body,
    });
    expect(res.status).toBe(403);
    const ok = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await signInternal('accounts', 'consent', body, { as: 'payments' })) },
      body,
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { decisions: { allowed: boolean }[] }).decisions[0]!.allowed).toBe(true);
  });
});

describe('revocation and time', () => {
  it('an operation in flight when the consent is revoked may finish; the next one is refused', async () => {
    const dave = await stack.token('dave');
    const c = await grant(gql, dave, { institutionId: 'ins_us_bancorp', scopes: [...ALL_SCOPES], durationDays: 30, disclosureVersion: version });
    expect(c.userErrors).toEqual([]);
    const before = await balanceOf(stack.dbs.payments, 'acc_dave_checking');
    const input = () => ({ fromAccountId: 'acc_dave_checking', toHandle: 'alice', amount: { amount: '2.00', currency: 'USD' }, idempotencyKey: newKey() });
    // Transfers racing the revocation: each either moved or was refused whole.
    const [racing, revoked] = await Promise.all([Promise.all([send(stack, dave, input()), send(stack, dave, input())]), revoke(gql, dave, c.consent!.id)]);
    expect(revoked.userErrors).toEqual([]);
    for (const r of racing) expect(r.userErrors.length === 0 ? 'moved' : r.userErrors[0]!.code).toMatch(/^(moved|CONSENT_REQUIRED)$/);
    const moved = racing.filter((r) => r.transfer !== null).length;
    expect(await balanceOf(stack.dbs.payments, 'acc_dave_checking')).toBe(before - BigInt(moved) * 200n);
    // After revokeConsent returned: refused, nothing moves.
    const next = await expectNothingMoved(stack.dbs.payments, () => send(stack, dave, input()));
    expectUserErrors(next as never, ['CONSENT_REQUIRED']);
  });

  it('a consent expiring between two pages of history: the second page is refused, with no job, and the expiry is audited once', async () => {
    const bobId = userId('bob');
    const seeded = await activeConsent(gql, bob, 'ins_wells_fargo');
    expect((await revoke(gql, bob, seeded.id)).userErrors).toEqual([]);
    const short = await grant(gql, bob, { institutionId: 'ins_wells_fargo', scopes: ['TRANSACTIONS'], durationDays: 1, disclosureVersion: version });
    expect(short.userErrors).toEqual([]);
    const page1 = expectData(
      await gql<{ account: { transactions: { pageInfo: { endCursor: string } } } }>(op('History'), { accountId: 'acc_bob_checking', first: 3 }, bob),
    );
    const after = page1.account.transactions.pageInfo.endCursor;
    // A day and a minute later (every service runs in this process, on this clock).
    vi.setSystemTime(Date.now() + 86_400_000 + 60_000);
    try {
      const later = await signToken(TEST_JWT_SECRET, bobId, 'payments');
      const page2 = await gql<{ account: { transactions: unknown } }>(op('History'), { accountId: 'acc_bob_checking', first: 3, after }, later);
      expect(page2.data!.account.transactions).toBeNull();
      expectConsentRequired(page2, 'account.transactions', 'ins_wells_fargo', 'TRANSACTIONS');
      const consents = await myConsents(gql, later);
      expect(consents.find((c) => c.id === short.consent!.id)).toMatchObject({ status: 'EXPIRED', revokedAt: null });
      // Expired counts as revoked: revoking it says so.
      expectUserErrors((await revoke(gql, later, short.consent!.id)) as never, ['CONSENT_ALREADY_REVOKED']);
      const expiries = await stack.dbs.accounts('data_access_log').where({ user_id: bobId, layer: 'consent-expiry' });
      expect(expiries).toHaveLength(1);
      expect(expiries[0]).toMatchObject({ decision: 'REFUSED', institutions: '["ins_wells_fargo"]' });
      expect(await stack.dbs.accounts('consent_events').where({ consent_id: short.consent!.id, kind: 'EXPIRED' })).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the audit trail', () => {
  it("every grant, revocation and refusal is a record with its institution, in the user's own log", async () => {
    const carol = await stack.token('carol');
    const c = await grant(gql, carol, { institutionId: 'ins_mastercard', scopes: ['BALANCES'], durationDays: 10, disclosureVersion: version });
    await revoke(gql, carol, c.consent!.id);
    // carol's mastercard card: her seeded consent is still active; revoke it too, then read.
    await revoke(gql, carol, (await activeConsent(gql, carol, 'ins_mastercard')).id);
    const refused = await gql(BALANCE, { id: 'acc_carol_card' }, carol);
    expectConsentRequired(refused, 'account.balance', 'ins_mastercard', 'BALANCES');
    const log = expectData(
      await gql<{ me: { dataAccessLog: { edges: { node: { layer: string; decision: string; coordinates: string[]; institutions: string[] } }[] } } }>(
        '{ me { dataAccessLog(first: 20) { edges { node { layer decision coordinates institutions } } } } }',
        {},
        carol,
      ),
    ).me.dataAccessLog.edges.map((e) => e.node);
    const mine = log.filter((n) => n.institutions.includes('ins_mastercard'));
    expect(mine.map((n) => n.layer)).toEqual(expect.arrayContaining(['consent-grant', 'consent-revoke', 'consent']));
    expect(mine.find((n) => n.layer === 'consent')).toMatchObject({ decision: 'REFUSED', institutions: ['ins_mastercard'] });
    expect(mine.find((n) => n.layer === 'consent')!.coordinates).toEqual(expect.arrayContaining(['Account.balance']));
    expect(mine.find((n) => n.layer === 'consent-grant')).toMatchObject({ decision: 'ALLOWED', coordinates: ['Mutation.grantConsent'] });
    // Refused ones, too, were audited before the refusal was answered: the accounts and the payments subgraph each wrote theirs.
    const rows = await stack.dbs.accounts('data_access_log').where({ user_id: userId('carol'), layer: 'consent' });
    expect(rows.length).toBeGreaterThanOrEqual(2);
  });

  it('a refusal that cannot be audited fails closed: no data', async () => {
    const db = stack.adminDb('accounts');
    const sqlite = db.client.config.client === 'sqlite3';
    if (sqlite)
      await db.raw(
        `CREATE TRIGGER consent_test_outage BEFORE INSERT ON data_access_log WHEN NEW.layer = 'consent' BEGIN SELECT RAISE(ABORT, 'simulated outage'); END`,
      );
    else {
      await db.raw(
        `CREATE OR REPLACE FUNCTION consent_test_outage() RETURNS trigger AS $$ BEGIN IF NEW.layer = 'consent' THEN RAISE EXCEPTION 'simulated outage'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
      );
      await db.raw('CREATE TRIGGER consent_test_outage BEFORE INSERT ON data_access_log FOR EACH ROW EXECUTE FUNCTION consent_test_outage()');
    }
    try {
      const r = await gql<{ account: { mask: string | null } | null }>(BALANCE, { id: 'acc_dave_checking' }, await stack.token('dave'));
      expect(r.data?.account?.mask ?? null).toBeNull();
      expect(r.errors?.length).toBeGreaterThan(0);
      for (const e of r.errors!) expect(e.extensions?.code, JSON.stringify(e)).toBe('AUDIT_UNAVAILABLE');
      expect(JSON.stringify(r.data)).not.toMatch(/\d{4}/);
    } finally {
      await db.raw(sqlite ? 'DROP TRIGGER consent_test_outage' : 'DROP TRIGGER consent_test_outage ON data_access_log');
    }
  });
});
