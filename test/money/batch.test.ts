/**
 * Group commit of money movements (subgraphs/payments/ledger/group-commit.ts, movements/plan.ts;
 * docs/money.md "Throughput"), called directly (no gateway) through the payments services one
 * process builds (one per database handle) on a seeded payments database: SQLite, or PostgreSQL
 * when PAYGRAPH_TEST_DATABASE_URL is set.
 *
 * - A concurrent burst of mixed valid and invalid movements with duplicate idempotency keys, run
 *   batched, gives exactly the outcomes, balances, rows and events of the same plan run one by one:
 *   a refused movement does not affect its neighbours, idempotency holds inside a batch, and the
 *   daily limit and balances are tracked across the movements of one batch.
 * - A database error in one movement of a batch fails only that movement.
 * - Several database handles (as several payments processes): no overdraft, the daily limit holds
 *   for one sender spending from two accounts at once, and a consumer reading `id > position`
 *   while they write never skips an outbox event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { isSqlite } from '../../lib/db.js';
import { TRANSFER_LIMITS } from '../../subgraphs/payments/limits.js';
import type { MakePurchaseInput, Movements, SendTransferInput } from '../../subgraphs/payments/movements/index.js';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import { noonClock } from '../helpers/clock.js';
import { balanceOf, balances, deposit, freshPaymentsDb, paymentsServices, writeCounts, type PaymentsDb } from '../helpers/money.js';

const open: PaymentsDb[] = [];
async function fresh(handles = 1): Promise<PaymentsDb> {
  const p = await freshPaymentsDb(handles);
  open.push(p);
  return p;
}
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

/** Counts ledger transactions started on `db` (each begins with a BEGIN statement). */
function countTransactions(db: Knex): { readonly n: number } {
  const counter = { n: 0 };
  db.on('query', (q: { sql: string }) => {
    if (/^\s*begin/i.test(q.sql)) counter.n++;
  });
  return counter;
}

type Step = { op: 'send'; user: string; input: SendTransferInput } | { op: 'pay'; user: string; input: MakePurchaseInput };

/** Outcome without the random ids: code list, or which earlier step's id it returned. */
type Shape = { errors: string[] } | { sameAs: number };

function usd(minor: bigint): { amount: string; currency: string } {
  const s = minor.toString().padStart(3, '0');
  return { amount: `${s.slice(0, -2)}.${s.slice(-2)}`, currency: 'USD' };
}

/**
 * The plan: valid movements interleaved with every kind of refusal, keys repeated with the same
 * and with another input, a sender crossing the daily limit and one account running dry inside
 * one burst.
 */
function buildPlan(carolChecking: bigint): Step[] {
  const daily = TRANSFER_LIMITS.USD!.dailyMinor;
  const big = (daily * 2n) / 5n; // 2,000.00: the third one from bob crosses the daily limit
  const t = (user: string, from: string, to: string, minor: bigint, key: string, note: string | null = null): Step => ({
    op: 'send',
    user,
    input: { fromAccountId: from, toHandle: to, amount: usd(minor), note, idempotencyKey: key },
  });
  const p = (user: string, account: string, merchant: string, minor: bigint, key: string): Step => ({
    op: 'pay',
    user,
    input: { accountId: account, merchantId: merchant, amount: usd(minor), idempotencyKey: key },
  });
  // carol spends her checking down to 0 in steps: the last ones must be refused.
  const quarter = carolChecking / 4n;
  const rest = carolChecking - 3n * quarter;
  return [
    t('usr_alice', 'acc_alice_checking', 'bob', 1_00n, 'a1'),
    t('usr_alice', 'acc_alice_checking', 'mallory', 1_00n, 'a2'), // RECIPIENT_NOT_FOUND
    t('usr_alice', 'acc_alice_checking', 'alice', 1_00n, 'a3'), // SELF_TRANSFER
    t('usr_alice', 'acc_bob_checking', 'carol', 1_00n, 'a4'), // ACCOUNT_NOT_FOUND (not hers)
    t('usr_alice', 'acc_alice_checking', 'bob', 1_00n, 'a1'), // same key, same input: a1's transfer
    t('usr_alice', 'acc_alice_checking', 'bob', 2_00n, 'a1'), // same key, other input: IDEMPOTENCY_KEY_REUSED
    t('usr_alice', 'acc_alice_checking', 'mallory', 3_00n, 'a5'), // refused (RECIPIENT_NOT_FOUND): key not consumed
    t('usr_alice', 'acc_alice_checking', 'dave', 3_00n, 'a5'), // same key, other input, after a refusal: succeeds
    {
      op: 'send',
      user: 'usr_alice',
      input: { fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '1.00', currency: 'EUR' }, idempotencyKey: 'a6' },
    }, // CURRENCY_MISMATCH
    t('usr_bob', 'acc_bob_checking', 'alice', big, 'b1'),
    t('usr_bob', 'acc_bob_checking', 'alice', big, 'b2'),
    t('usr_bob', 'acc_bob_checking', 'dave', big, 'b3'), // LIMIT_EXCEEDED: 6,000.00 > 5,000.00 today
    t('usr_bob', 'acc_bob_checking', 'dave', daily - 2n * big, 'b4'), // exactly up to the limit: ok
    t('usr_bob', 'acc_bob_checking', 'dave', 1n, 'b5'), // LIMIT_EXCEEDED
    t('usr_bob', 'acc_bob_checking', 'alice', TRANSFER_LIMITS.USD!.perTransferMinor + 1n, 'b6'), // LIMIT_EXCEEDED (per transfer)
    p('usr_carol', 'acc_carol_checking', 'mer_blue_bottle', quarter, 'c1'),
    t('usr_carol', 'acc_carol_checking', 'dave', quarter, 'c2'),
    p('usr_carol', 'acc_carol_checking', 'mer_nope', 1_00n, 'c3'), // MERCHANT_NOT_FOUND
    p('usr_carol', 'acc_carol_checking', 'mer_safeway', quarter, 'c4'),
    p('usr_carol', 'acc_carol_checking', 'mer_safeway', rest + 1n, 'c5'), // INSUFFICIENT_FUNDS (1 short)
    p('usr_carol', 'acc_carol_checking', 'mer_safeway', rest, 'c6'), // exactly the rest: ok
    p('usr_carol', 'acc_carol_checking', 'mer_safeway', 1n, 'c7'), // INSUFFICIENT_FUNDS (0 left)
    p('usr_carol', 'acc_carol_checking', 'mer_blue_bottle', quarter, 'c1'), // same key, same input: c1's purchase
    t('usr_carol', 'acc_carol_checking', 'dave', 1n, 'c1'), // same key, other operation: a new transfer, refused for funds
    p('usr_dave', 'acc_dave_checking', 'mer_whole_foods', 1_00n, 'd1'), // frozen account: ACCOUNT_FROZEN
    t('usr_alice', 'acc_alice_card', 'dave', 5_00n, 'a7'), // money may arrive on a frozen account
  ];
}

async function runPlan(movements: Movements, plan: Step[], concurrently: boolean): Promise<{ ids: (string | null)[]; errors: string[][] }> {
  const one = async (s: Step) => {
    if (s.op === 'send') {
      const r = await movements.sendTransfer(s.user, s.input);
      return { id: r.transferId, errors: r.userErrors.map((e) => e.code) };
    }
    const r = await movements.makePurchase(s.user, s.input);
    return { id: r.purchaseId, errors: r.userErrors.map((e) => e.code) };
  };
  const results = concurrently
    ? await Promise.all(plan.map(one))
    : await (async () => {
        const out = [];
        for (const s of plan) out.push(await one(s));
        return out;
      })();
  return { ids: results.map((r) => r.id), errors: results.map((r) => r.errors) };
}

function shapes(r: { ids: (string | null)[]; errors: string[][] }): Shape[] {
  return r.ids.map((id, i) => (id === null ? { errors: r.errors[i]! } : { sameAs: r.ids.indexOf(id) }));
}

/** Same starting point for both runs: bob can reach his daily limit, dave's checking is frozen, carol has exactly 400.00. */
async function prepare(db: Knex, movements: Movements): Promise<bigint> {
  await deposit(db, 'acc_bob_checking', TRANSFER_LIMITS.USD!.dailyMinor * 2n);
  await db('ledger_accounts').where({ id: 'acc_dave_checking' }).update({ frozen: true });
  const carol = await balanceOf(db, 'acc_carol_checking');
  const drain = await movements.makePurchase('usr_carol', {
    accountId: 'acc_carol_checking',
    merchantId: 'mer_apple',
    amount: usd(carol - 40_000n),
    idempotencyKey: 'setup',
  });
  expect(drain.userErrors).toEqual([]);
  return balanceOf(db, 'acc_carol_checking');
}

/** Everything the movements wrote, without random ids and timestamps. */
async function written(db: Knex) {
  const transfers = (await db('transfers').select('from_account_id', 'to_account_id', 'amount_minor', 'note').orderBy('id')) as Record<string, unknown>[];
  const purchases = (await db('purchases').select('account_id', 'merchant_id', 'amount_minor').orderBy('id')) as Record<string, unknown>[];
  const events = (await db('outbox_events').select('event_type', 'payload')) as { event_type: string; payload: string }[];
  const norm = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify({ ...r, amount_minor: String(r.amount_minor) })).sort();
  return {
    balances: Object.fromEntries([...(await balances(db))].map(([k, v]) => [k, v.toString()])),
    counts: await writeCounts(db),
    transfers: norm(transfers),
    purchases: norm(purchases),
    events: events
      .map((e) => {
        const p = JSON.parse(e.payload) as Record<string, unknown>;
        return `${e.event_type} ${String(p.amountMinor)} ${String(p.fromAccountId ?? p.accountId)}`;
      })
      .sort(),
    usage: (
      (await db('transfer_daily_usage')
        .select('user_id', 'currency', db.raw('CAST(sent_minor AS TEXT) AS sent'))
        .where('sent_minor', '>', 0)
        .orderBy(['user_id', 'currency'])) as unknown[]
    ).map((r) => JSON.stringify(r)),
  };
}

describe('group commit: a batch behaves exactly like the same movements one by one', () => {
  it('mixed valid and refused movements, duplicate keys, daily limit and funds running out inside one burst', async () => {
    const seq = await fresh();
    const bat = await fresh();
    // One payments process per database: its movements share its ledger's group commit.
    // Each on a clock at noon UTC: the daily limit never resets half-way, whatever the hour.
    const seqMovements = paymentsServices(seq.db, noonClock()).movements;
    const batMovements = paymentsServices(bat.db, noonClock()).movements;
    const carolSeq = await prepare(seq.db, seqMovements);
    const carolBat = await prepare(bat.db, batMovements);
    expect(carolBat).toBe(carolSeq);
    const plan = buildPlan(carolSeq);

    const sequential = await runPlan(seqMovements, plan, false);
    const tx = countTransactions(bat.db);
    const batched = await runPlan(batMovements, plan, true);

    // The burst really was batched: far fewer transactions than movements.
    expect(tx.n).toBeGreaterThan(0);
    expect(tx.n).toBeLessThan(plan.length / 2);

    expect(batched.errors).toEqual(sequential.errors);
    expect(shapes(batched)).toEqual(shapes(sequential));
    // Spot checks of the expected outcomes (the sequential run is the model; make sure it is the right one).
    const codes = (key: string) => sequential.errors[plan.findIndex((s) => s.input.idempotencyKey === key)]!;
    expect(codes('a2')).toEqual(['RECIPIENT_NOT_FOUND']);
    expect(sequential.errors[5]).toEqual(['IDEMPOTENCY_KEY_REUSED']);
    expect(sequential.errors[7]).toEqual([]);
    expect(codes('b3')).toEqual(['LIMIT_EXCEEDED']);
    expect(codes('b4')).toEqual([]);
    expect(codes('b5')).toEqual(['LIMIT_EXCEEDED']);
    expect(codes('c5')).toEqual(['INSUFFICIENT_FUNDS']);
    expect(codes('c6')).toEqual([]);
    expect(codes('c7')).toEqual(['INSUFFICIENT_FUNDS']);
    expect(codes('d1')).toEqual(['ACCOUNT_FROZEN']);
    expect(sequential.errors[23]).toEqual(['INSUFFICIENT_FUNDS']);
    expect(shapes(sequential)[4]).toEqual({ sameAs: 0 });
    expect(shapes(sequential)[22]).toEqual({ sameAs: 15 });

    expect(await written(bat.db)).toEqual(await written(seq.db));
    expect(await balanceOf(bat.db, 'acc_carol_checking')).toBe(0n);
    expect((await verifyLedger(bat.db)).problems).toEqual([]);

    // A replay after the burst returns the stored results.
    const again = await runPlan(batMovements, plan, true);
    batched.ids.forEach((id, i) => {
      if (id !== null) expect(again.ids[i]).toBe(id);
    });
    expect((await writeCounts(bat.db)).transfers).toBe((await writeCounts(seq.db)).transfers);
  });

  it('a database error in one movement of a batch fails only that movement', async () => {
    const { db, admin } = await fresh();
    const { movements } = paymentsServices(db);
    // A trigger that rejects one specific transfer, as an unexpected database error would.
    if (isSqlite(db)) {
      await admin.raw(`CREATE TRIGGER boom BEFORE INSERT ON transfers WHEN NEW.note = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    } else {
      await admin.raw(
        `CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.note = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
      );
      await admin.raw('CREATE TRIGGER boom BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION boom()');
    }
    const before = await writeCounts(db);
    const a0 = await balanceOf(db, 'acc_alice_checking');
    const tx = countTransactions(db);
    const notes = ['one', 'two', 'boom', 'four', 'five', 'six'];
    const settled = await Promise.allSettled(
      notes.map((note, i) =>
        movements.sendTransfer('usr_alice', {
          fromAccountId: 'acc_alice_checking',
          toHandle: 'bob',
          amount: { amount: '1.00', currency: 'USD' },
          note,
          idempotencyKey: `boom-${i}`,
        }),
      ),
    );
    expect(tx.n).toBeGreaterThan(1);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/boom/);
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.userErrors).toEqual([]);
    const after = await writeCounts(db);
    expect(after.transfers! - before.transfers!).toBe(5);
    expect(after.outbox_events! - before.outbox_events!).toBe(5);
    expect(after.idempotency_keys! - before.idempotency_keys!).toBe(5);
    expect(await balanceOf(db, 'acc_alice_checking')).toBe(a0 - 500n);
    expect((await verifyLedger(db)).problems).toEqual([]);
  });
});

describe('several processes on one database (one handle each)', () => {
  it('never overdraw an account, and hold the daily limit for a sender spending from two accounts at once', async () => {
    const { handles, db } = await fresh(4);
    // One clock for all four processes: noon UTC, so the daily limit never resets half-way.
    const clock = noonClock();
    const movers = handles.map((h) => paymentsServices(h, clock).movements);
    // carol: exactly 100.00 on checking.
    const start = await balanceOf(db, 'acc_carol_checking');
    expect(
      (
        await movers[0]!.makePurchase('usr_carol', {
          accountId: 'acc_carol_checking',
          merchantId: 'mer_safeway',
          amount: usd(start - 10_000n),
          idempotencyKey: 'drain',
        })
      ).userErrors,
    ).toEqual([]);
    const spend = await Promise.all(
      handles.flatMap((_h, c) =>
        Array.from({ length: 12 }, (_, i) =>
          movers[c]!.sendTransfer('usr_carol', {
            fromAccountId: 'acc_carol_checking',
            toHandle: 'bob',
            amount: usd(700n),
            idempotencyKey: `spend-${c}-${i}`,
          }).then((r) => r.userErrors.map((e) => e.code).join() || 'ok'),
        ),
      ),
    );
    expect(spend.filter((o) => o === 'ok').length).toBe(14); // 14 x 7.00 <= 100.00 < 15 x 7.00
    expect(spend.filter((o) => o !== 'ok').every((o) => o === 'INSUFFICIENT_FUNDS')).toBe(true);
    expect(await balanceOf(db, 'acc_carol_checking')).toBe(200n);

    // alice sends 100.00 at a time from her checking to bob (handles 0 and 2) and from her card to
    // dave (handles 1 and 3) at once: no account in common, but the daily limit (5,000.00 per
    // sender and currency) is shared by both.
    const daily = TRANSFER_LIMITS.USD!.dailyMinor;
    await deposit(db, 'acc_alice_checking', daily * 2n);
    await deposit(db, 'acc_alice_card', daily * 2n);
    const hundred = daily / 50n;
    {
      const sends = await Promise.all(
        handles.flatMap((_h, c) =>
          Array.from({ length: 20 }, (_, i) =>
            movers[c]!.sendTransfer('usr_alice', {
              fromAccountId: c % 2 === 0 ? 'acc_alice_checking' : 'acc_alice_card',
              toHandle: c % 2 === 0 ? 'bob' : 'dave',
              amount: usd(hundred),
              idempotencyKey: `daily-${c}-${i}`,
            }).then((r) => r.userErrors.map((e) => e.code).join() || 'ok'),
          ),
        ),
      );
      expect(sends.filter((o) => o === 'ok').length).toBe(50);
      expect(sends.filter((o) => o !== 'ok').every((o) => o === 'LIMIT_EXCEEDED')).toBe(true);
    }
    const sent = (await db('transfers').where({ from_user_id: 'usr_alice' }).select('amount_minor')) as { amount_minor: unknown }[];
    expect(sent.reduce((s, r) => s + BigInt(String(r.amount_minor)), 0n)).toBe(daily);
    expect((await verifyLedger(db)).problems).toEqual([]);
  });

  it('a consumer reading id > position while several processes write never skips an event', async () => {
    // Each handle moves money between rows no other handle touches (its own user and merchant), so
    // nothing but the outbox itself orders their commits.
    const { handles, db } = await fresh(4);
    // One clock for all four processes: noon UTC, so the daily limit never resets half-way.
    const clock = noonClock();
    const movers = handles.map((h) => paymentsServices(h, clock).movements);
    const seen: number[] = [];
    let position = 0;
    let writing = true;
    const read = async () => {
      const rows = (await db('outbox_events').select('id').where('id', '>', position).orderBy('id').limit(500)) as { id: unknown }[];
      for (const r of rows) seen.push(Number(r.id));
      if (rows.length > 0) position = Number(rows[rows.length - 1]!.id);
    };
    const consumer = (async () => {
      while (writing) await read();
    })();
    const users = ['alice', 'bob', 'carol', 'dave'];
    const merchants = ['mer_blue_bottle', 'mer_safeway', 'mer_whole_foods', 'mer_trader_joes'];
    const perWorker = 12;
    await Promise.all(
      handles.flatMap((_h, c) =>
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = 0; i < perWorker; i++) {
            const r = await movers[c]!.makePurchase(`usr_${users[c]!}`, {
              accountId: `acc_${users[c]!}_checking`,
              merchantId: merchants[c]!,
              amount: usd(1n),
              idempotencyKey: `ev-${c}-${w}-${i}`,
            });
            expect(r.userErrors).toEqual([]);
          }
        }),
      ),
    );
    writing = false;
    await consumer;
    await read();
    const all = ((await db('outbox_events').select('id').orderBy('id')) as { id: unknown }[]).map((r) => Number(r.id));
    expect(all.length).toBe(4 * 6 * perWorker);
    expect(seen).toEqual(all);
  });
});
