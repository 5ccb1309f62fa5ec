/**
 * sendTransfer through the gateway, as a client: success in both histories, every refusal code
 * with nothing moved, idempotency, input rules, hostile strings as data, visibility.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../lib/auth.js';
import { signGraphQL } from '../helpers/signing.js';
import { TRANSFER_LIMITS } from '../../subgraphs/payments/limits.js';
import { onOneDay } from '../helpers/clock.js';
import { expectUnseen, expectGraphQLError, expectNothingMoved, expectUserErrors } from '../helpers/matchers.js';
import { balanceOf, deposit, history, newKey, send, SEND } from '../helpers/money.js';
import { postGraphQL, startTestStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let alice: string;
let bob: string;
let carol: string;

beforeAll(async () => {
  stack = await startTestStack();
  [alice, bob, carol] = await Promise.all([stack.token('alice'), stack.token('bob'), stack.token('carol')]);
});
afterAll(async () => {
  await stack?.stop();
});

const base = (over: Record<string, unknown> = {}) => ({
  fromAccountId: 'acc_alice_checking',
  toHandle: 'bob',
  amount: { amount: '1.00', currency: 'USD' },
  idempotencyKey: newKey(),
  ...over,
});

describe('a successful transfer', () => {
  it('moves the exact amount and shows in both histories with the counterparty', async () => {
    const db = stack.dbs.payments;
    const [a0, b0] = [await balanceOf(db, 'acc_alice_checking'), await balanceOf(db, 'acc_bob_checking')];
    const out = await send(stack, alice, base({ amount: { amount: '12.34', currency: 'USD' }, note: 'Dinner split' }));
    expect(out.userErrors).toEqual([]);
    const t = out.transfer!;
    expect(t).toMatchObject({
      status: 'POSTED',
      amount: { amount: '12.34', currency: 'USD' },
      note: 'Dinner split',
      from: { id: 'acc_alice_checking' },
      recipient: { id: 'usr_bob', handle: 'bob' },
    });
    expect(t.id).toMatch(/^trf_/);
    expect(Number.isNaN(Date.parse(t.createdAt))).toBe(false);
    expect(await balanceOf(db, 'acc_alice_checking')).toBe(a0 - 1234n);
    expect(await balanceOf(db, 'acc_bob_checking')).toBe(b0 + 1234n);

    const [mine] = await history(stack, alice, 'acc_alice_checking', 1);
    expect(mine).toMatchObject({
      kind: 'TRANSFER',
      direction: 'DEBIT',
      status: 'POSTED',
      amount: { amount: '12.34', currency: 'USD' },
      description: 'Dinner split',
      merchant: null,
      counterparty: { id: 'usr_bob', handle: 'bob' },
    });
    const [theirs] = await history(stack, bob, 'acc_bob_checking', 1);
    expect(theirs).toMatchObject({
      kind: 'TRANSFER',
      direction: 'CREDIT',
      amount: { amount: '12.34', currency: 'USD' },
      counterparty: { id: 'usr_alice', handle: 'alice', name: 'Alice Johnson' },
    });
    expect(theirs!.postedAt).toBe(t.createdAt);
  });

  it('accepts a handle with @ and any case, and the recipient can read the transfer, a third user cannot', async () => {
    const out = await send(stack, alice, base({ toHandle: '@Bob' }));
    expect(out.userErrors).toEqual([]);
    const q = 'query($id: ID!) { transfer(id: $id) { id amount { amount } recipient { handle } } }';
    const asBob = await stack.gql<{ transfer: { id: string } | null }>(q, { id: out.transfer!.id }, bob);
    expect(asBob.data?.transfer?.id).toBe(out.transfer!.id);
    const asCarol = await stack.gql<{ transfer: { id: string } | null }>(q, { id: out.transfer!.id }, carol);
    expect(asCarol.errors).toBeUndefined();
    expect(asCarol.data?.transfer).toBeNull();
  });

  it('stores SQL and markup in a note as data', async () => {
    const hostile = `'); DROP TABLE postings; -- <script>alert("x")</script> \${1+1} {{7*7}}`;
    const out = await send(stack, alice, base({ note: hostile, toHandle: 'carol' }));
    expect(out.userErrors).toEqual([]);
    expect(out.transfer!.note).toBe(hostile);
    const [mine] = await history(stack, carol, 'acc_carol_checking', 1);
    expect(mine!.description).toBe(hostile);
    expect(await stack.dbs.payments.schema.hasTable('postings')).toBe(true);
    // A handle that looks like SQL finds nobody rather than everybody.
    expectUserErrors(await send(stack, alice, base({ toHandle: "bob' OR '1'='1" })), ['RECIPIENT_NOT_FOUND']);
  });
});

describe('refusals move nothing', () => {
  const cases: { name: string; code: string; token?: () => string; input: () => Record<string, unknown>; field?: string[] }[] = [
    { name: 'zero', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '0.00', currency: 'USD' } }), field: ['input', 'amount', 'amount'] },
    { name: 'negative', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '-5.00', currency: 'USD' } }) },
    { name: 'too many decimals', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '1.005', currency: 'USD' } }) },
    { name: 'exponent', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '1e2', currency: 'USD' } }) },
    { name: 'non-numeric', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: 'ten', currency: 'USD' } }) },
    { name: 'above the sanity cap', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '1000000.01', currency: 'USD' } }) },
    { name: 'decimals on JPY', code: 'INVALID_AMOUNT', input: () => base({ amount: { amount: '100.5', currency: 'JPY' } }) },
    {
      name: 'unknown currency',
      code: 'UNSUPPORTED_CURRENCY',
      input: () => base({ amount: { amount: '1.00', currency: 'XYZ' } }),
      field: ['input', 'amount', 'currency'],
    },
    { name: 'EUR from a USD account', code: 'CURRENCY_MISMATCH', input: () => base({ amount: { amount: '1.00', currency: 'EUR' } }) },
    // Dave's card has 117.71 of unused credit.
    {
      name: "more than the card's unused credit",
      code: 'INSUFFICIENT_FUNDS',
      input: () => base({ fromAccountId: 'acc_dave_card', toHandle: 'alice', amount: { amount: '117.72', currency: 'USD' } }),
      token: () => daveToken,
    },
    { name: 'above the per-transfer cap', code: 'LIMIT_EXCEEDED', input: () => base({ amount: { amount: '2500.01', currency: 'USD' } }) },
    { name: 'unknown handle', code: 'RECIPIENT_NOT_FOUND', input: () => base({ toHandle: 'mallory' }), field: ['input', 'toHandle'] },
    { name: 'to yourself', code: 'SELF_TRANSFER', input: () => base({ toHandle: 'alice' }) },
    { name: "someone else's account", code: 'ACCOUNT_NOT_FOUND', input: () => base({ fromAccountId: 'acc_bob_checking' }), field: ['input', 'fromAccountId'] },
    { name: 'a system account', code: 'ACCOUNT_NOT_FOUND', input: () => base({ fromAccountId: 'sys_external_usd' }) },
    { name: 'an unknown account', code: 'ACCOUNT_NOT_FOUND', input: () => base({ fromAccountId: 'acc_nope' }) },
    { name: 'a note of 281 characters', code: 'INVALID_INPUT', input: () => base({ note: 'n'.repeat(281) }), field: ['input', 'note'] },
    { name: 'an empty key', code: 'INVALID_INPUT', input: () => base({ idempotencyKey: '' }), field: ['input', 'idempotencyKey'] },
    { name: 'a key of 256 characters', code: 'INVALID_INPUT', input: () => base({ idempotencyKey: 'k'.repeat(256) }) },
  ];
  let daveToken = '';
  beforeAll(async () => {
    daveToken = await stack.token('dave');
  });

  for (const c of cases) {
    it(`${c.name} -> ${c.code}`, async () => {
      const out = await expectNothingMoved(stack.dbs.payments, () => send(stack, c.token ? c.token() : alice, c.input()));
      expectUserErrors(out, [c.code], { field: c.field });
    });
  }

  it('a note of exactly 280 characters (emoji count once) and a key of 255 are fine', async () => {
    const out = await send(stack, alice, base({ note: '💸'.repeat(280), idempotencyKey: 'x'.repeat(255) }));
    expect(out.userErrors).toEqual([]);
  });

  it('reports every input problem at once', async () => {
    const out = await expectNothingMoved(stack.dbs.payments, () =>
      send(stack, alice, base({ note: 'n'.repeat(300), idempotencyKey: '', amount: { amount: '1.001', currency: 'USD' } })),
    );
    expect(out.transfer).toBeNull();
    expect(out.userErrors.map((e) => e.code).sort()).toEqual(['INVALID_AMOUNT', 'INVALID_INPUT', 'INVALID_INPUT']);
  });

  it('a frozen account -> ACCOUNT_FROZEN', async () => {
    const db = stack.dbs.payments;
    await db('ledger_accounts').where({ id: 'acc_carol_checking' }).update({ frozen: true });
    try {
      expectUserErrors(await expectNothingMoved(db, () => send(stack, carol, base({ fromAccountId: 'acc_carol_checking', toHandle: 'bob' }))), [
        'ACCOUNT_FROZEN',
      ]);
      // Money may still arrive on a frozen account.
      expect((await send(stack, alice, base({ toHandle: 'carol' }))).userErrors).toEqual([]);
    } finally {
      await db('ledger_accounts').where({ id: 'acc_carol_checking' }).update({ frozen: false });
    }
  });

  it('the daily limit counts what was already sent today', async () => {
    const db = stack.dbs.payments;
    const limit = TRANSFER_LIMITS.USD!;
    await deposit(db, 'acc_bob_checking', limit.dailyMinor * 2n);
    const sentToday = await db('transfers').where({ from_user_id: 'usr_bob' }).count({ n: '*' }).first();
    expect(Number((sentToday as { n: unknown }).n)).toBe(0);
    const half = (limit.dailyMinor / 2n).toString();
    const asMoney = (minor: string) => ({ amount: `${minor.slice(0, -2)}.${minor.slice(-2)}`, currency: 'USD' });
    // All three on one UTC day, even when the test runs at midnight (the limit resets each day).
    await onOneDay(async () => {
      const token = await stack.token('bob'); // issued on the stopped clock, like every check of it
      expectUserErrors(await send(stack, token, base({ fromAccountId: 'acc_bob_checking', toHandle: 'alice', amount: asMoney(half) })), []);
      expectUserErrors(await send(stack, token, base({ fromAccountId: 'acc_bob_checking', toHandle: 'carol', amount: asMoney(half) })), []);
      const out = await expectNothingMoved(db, () =>
        send(stack, token, base({ fromAccountId: 'acc_bob_checking', toHandle: 'carol', amount: { amount: '0.01', currency: 'USD' } })),
      );
      expect(expectUserErrors(out, ['LIMIT_EXCEEDED'])[0]!.message).toMatch(/Daily/);
    });
  });
});

describe('idempotency', () => {
  it('the same key and input returns the same payload and moves money once', async () => {
    const db = stack.dbs.payments;
    const input = base({ amount: { amount: '7.00', currency: 'USD' }, note: 'once' });
    const a0 = await balanceOf(db, 'acc_alice_checking');
    const first = await send(stack, alice, input);
    const second = await send(stack, alice, input);
    // "7" and "7.00" are the same amount: still the same request.
    const third = await send(stack, alice, { ...input, amount: { amount: '7', currency: 'USD' } });
    expect(first.userErrors).toEqual([]);
    expect(second).toEqual(first);
    expect(third).toEqual(first);
    expect(await balanceOf(db, 'acc_alice_checking')).toBe(a0 - 700n);
  });

  it('the same key with another input is IDEMPOTENCY_KEY_REUSED', async () => {
    const input = base({ amount: { amount: '3.00', currency: 'USD' } });
    expect((await send(stack, alice, input)).userErrors).toEqual([]);
    for (const changed of [{ amount: { amount: '3.01', currency: 'USD' } }, { toHandle: 'carol' }, { note: 'different' }]) {
      const out = await expectNothingMoved(stack.dbs.payments, () => send(stack, alice, { ...input, ...changed }));
      expectUserErrors(out, ['IDEMPOTENCY_KEY_REUSED'], { field: ['input', 'idempotencyKey'] });
    }
  });

  it('keys are per user: another user may use the same key', async () => {
    const key = newKey();
    expect((await send(stack, alice, base({ idempotencyKey: key }))).userErrors).toEqual([]);
    const out = await send(stack, carol, base({ fromAccountId: 'acc_carol_checking', toHandle: 'alice', idempotencyKey: key }));
    expect(out.userErrors).toEqual([]);
  });

  it('a refused request does not consume its key', async () => {
    const key = newKey();
    expectUserErrors(await send(stack, alice, base({ toHandle: 'nobody-here', idempotencyKey: key })), ['RECIPIENT_NOT_FOUND']);
    const ok = await send(stack, alice, base({ idempotencyKey: key }));
    expect(ok.userErrors).toEqual([]);
  });
});

describe('who may move money', () => {
  it('without a token the gateway refuses and nothing moves', async () => {
    const res = await expectNothingMoved(stack.dbs.payments, () => stack.gql(SEND, { input: base() }, null));
    // An anonymous caller has no purpose: validated against the contract schema, which has no mutations.
    expectUnseen(res);
  });

  it('the payments subgraph itself refuses a signed caller without a user id with UNAUTHENTICATED', async () => {
    // (An anonymous caller has no purpose, so the gateway refuses it first: the contract schema has no mutations.)
    const body = JSON.stringify({
      query: 'mutation($input: SendTransferInput!) { sendTransfer(input: $input) { userErrors { code } } }',
      variables: { input: base() },
    });
    const res = await postGraphQL(stack.subgraphs.payments.url, body, await signGraphQL('payments', { ...ANONYMOUS, purpose: 'payments' }, body));
    expectGraphQLError(res, 'UNAUTHENTICATED');
  });

  it('an advertising token cannot move money', async () => {
    const ads = await stack.token('alice', 'advertising');
    expectUnseen(await expectNothingMoved(stack.dbs.payments, () => stack.gql(SEND, { input: base() }, ads)));
  });
});
