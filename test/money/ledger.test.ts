/**
 * The ledger module on its own: property-based invariants over random operation sequences (on a
 * :memory: database), the rules, append-only storage, and serialization across connections
 * (two knex instances on one SQLite file behave like two processes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, openDb } from '../../lib/db.js';
import { toBigInt } from '../../lib/money.js';
import { LedgerError, type NewEntry, type NewPosting } from '../../subgraphs/payments/ledger/index.js';
import { migrations } from '../../subgraphs/payments/migrations.js';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import { entryPoster } from '../helpers/money.js';

/** One entry through the ledger's real write path, in its own transaction (as a lone caller would). */
const postEntry = (db: Knex, entry: NewEntry) => entryPoster(db)(entry);

interface AccountSpec {
  id: string;
  kind: 'CHECKING' | 'CREDIT_CARD' | 'EXTERNAL' | 'MERCHANT';
  limit?: bigint;
  frozen?: boolean;
  currency?: string;
}

const ACCOUNTS: AccountSpec[] = [
  { id: 'chk_a', kind: 'CHECKING' },
  { id: 'chk_b', kind: 'CHECKING' },
  { id: 'card_a', kind: 'CREDIT_CARD', limit: 50_000n },
  { id: 'card_b', kind: 'CREDIT_CARD', limit: 20_000n },
  { id: 'chk_frozen', kind: 'CHECKING', frozen: true },
  { id: 'ext', kind: 'EXTERNAL' },
  { id: 'shop', kind: 'MERCHANT' },
  { id: 'chk_eur', kind: 'CHECKING', currency: 'EUR' },
  { id: 'ext_eur', kind: 'EXTERNAL', currency: 'EUR' },
];

async function freshLedger(file = ':memory:'): Promise<Knex> {
  const db = openDb({ sqliteFile: file });
  await migrate(db, migrations);
  await db('parties').insert({ user_id: 'u1', handle: 'u1', country: 'US' });
  await db('ledger_accounts').insert(
    ACCOUNTS.map((a) => ({
      id: a.id,
      owner_user_id: a.kind === 'CHECKING' || a.kind === 'CREDIT_CARD' ? 'u1' : null,
      kind: a.kind,
      currency: a.currency ?? 'USD',
      credit_limit_minor: a.limit?.toString() ?? null,
      frozen: a.frozen ?? false,
      balance_minor: 0,
      merchant_id: a.kind === 'MERCHANT' ? 'mer_shop' : null,
    })),
  );
  return db;
}

async function cached(db: Knex): Promise<Map<string, bigint>> {
  const rows = (await db('ledger_accounts').select('id', 'balance_minor')) as { id: string; balance_minor: unknown }[];
  return new Map(rows.map((r) => [r.id, toBigInt(r.balance_minor)]));
}

let entrySeq = 0;
const entryId = () => `je_prop_${++entrySeq}`;

/** The model: what the rules say should happen to balances (written here, independently of the ledger's code). */
function floorOf(a: AccountSpec): bigint | null {
  if (a.kind === 'CHECKING') return 0n;
  if (a.kind === 'CREDIT_CARD') return -(a.limit ?? 0n);
  return null;
}

type Op =
  | { type: 'move'; from: string; to: string; minor: bigint }
  | { type: 'split'; from: string; to: [string, string]; minors: [bigint, bigint] }
  | { type: 'unbalanced'; from: string; to: string; minor: bigint; off: bigint }
  | { type: 'eur'; minor: bigint }
  /** Spend exactly what `from` has available, plus `over` (-1, 0 or 1): the boundary cases. */
  | { type: 'exact'; from: string; to: string; over: bigint; minor?: bigint };

const usdIds = ACCOUNTS.filter((a) => (a.currency ?? 'USD') === 'USD').map((a) => a.id);
const acct = fc.constantFrom(...usdIds);
const amount = fc.bigInt(1n, 80_000n);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: fc.constant('move' as const), from: acct, to: acct, minor: amount }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('split' as const), from: acct, to: fc.tuple(acct, acct), minors: fc.tuple(amount, amount) }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ type: fc.constant('unbalanced' as const), from: acct, to: acct, minor: amount, off: fc.bigInt(-3n, 3n).filter((x) => x !== 0n) })
      .filter((o) => o.minor + o.off !== 0n),
  }, // a zero posting would be INVALID_ENTRY, not unbalanced
  { weight: 1, arbitrary: fc.record({ type: fc.constant('eur' as const), minor: amount }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('exact' as const), from: acct, to: acct, over: fc.constantFrom(-1n, 0n, 1n) }) },
);

function postingsOf(o: Op): NewPosting[] {
  switch (o.type) {
    case 'exact':
    case 'move':
      return [
        { accountId: o.from, amountMinor: -o.minor!, currency: 'USD' },
        { accountId: o.to, amountMinor: o.minor!, currency: 'USD' },
      ];
    case 'split':
      return [
        { accountId: o.from, amountMinor: -(o.minors[0] + o.minors[1]), currency: 'USD' },
        { accountId: o.to[0], amountMinor: o.minors[0], currency: 'USD' },
        { accountId: o.to[1], amountMinor: o.minors[1], currency: 'USD' },
      ];
    case 'unbalanced':
      return [
        { accountId: o.from, amountMinor: -o.minor, currency: 'USD' },
        { accountId: o.to, amountMinor: o.minor + o.off, currency: 'USD' },
      ];
    case 'eur':
      return [
        { accountId: 'ext_eur', amountMinor: -o.minor, currency: 'EUR' },
        { accountId: 'chk_eur', amountMinor: o.minor, currency: 'EUR' },
      ];
  }
}

/** Applies an op to the model; returns the expected refusal code, or null when it must post. */
function model(balances: Map<string, bigint>, o: Op): string | null {
  if (o.type === 'exact') {
    const spec = ACCOUNTS.find((a) => a.id === o.from)!;
    const floor = floorOf(spec) ?? 0n;
    const available = balances.get(o.from)! - floor;
    o.minor = available + o.over > 0n ? available + o.over : 1n;
  }
  const postings = postingsOf(o);
  if (o.type === 'unbalanced') return 'UNBALANCED_ENTRY';
  const deltas = new Map<string, bigint>();
  for (const p of postings) deltas.set(p.accountId, (deltas.get(p.accountId) ?? 0n) + p.amountMinor);
  for (const [id, d] of deltas) {
    if (d >= 0n) continue;
    const spec = ACCOUNTS.find((a) => a.id === id)!;
    if (spec.frozen) return 'ACCOUNT_FROZEN';
    const floor = floorOf(spec);
    if (floor !== null && balances.get(id)! + d < floor) return 'INSUFFICIENT_FUNDS';
  }
  for (const [id, d] of deltas) balances.set(id, balances.get(id)! + d);
  return null;
}

describe('ledger invariants over random operation sequences', () => {
  it('cached balances follow the model, every entry balances, no floor is crossed, refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.bigInt(0n, 100_000n), async (ops, funding) => {
        const db = await freshLedger();
        try {
          const expected = await cached(db);
          if (funding > 0n) {
            await postEntry(db, {
              id: entryId(),
              kind: 'DEPOSIT',
              description: 'fund',
              postedAt: new Date().toISOString(),
              postings: [
                { accountId: 'ext', amountMinor: -funding, currency: 'USD' },
                { accountId: 'chk_a', amountMinor: funding, currency: 'USD' },
              ],
            });
            expected.set('ext', -funding);
            expected.set('chk_a', funding);
          }
          for (const o of ops) {
            const refusal = model(expected, o);
            const entriesBefore = Number(((await db('journal_entries').count({ n: '*' }).first()) as { n: unknown }).n);
            let got: string | null = null;
            try {
              await postEntry(db, { id: entryId(), kind: 'TRANSFER', description: o.type, postedAt: new Date().toISOString(), postings: postingsOf(o) });
            } catch (err) {
              if (!(err instanceof LedgerError)) throw err;
              got = err.code;
            }
            expect(got).toBe(refusal);
            const entriesAfter = Number(((await db('journal_entries').count({ n: '*' }).first()) as { n: unknown }).n);
            expect(entriesAfter).toBe(entriesBefore + (refusal ? 0 : 1));
            expect(await cached(db)).toEqual(expected);
          }
          const v = await verifyLedger(db);
          expect(v.problems).toEqual([]);
          expect(v.totals.USD!.cachedBalancesMinor).toBe(0n);
          for (const a of ACCOUNTS) {
            const floor = floorOf(a);
            if (floor !== null) expect(expected.get(a.id)!).toBeGreaterThanOrEqual(floor);
          }
        } finally {
          await db.destroy();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('ledger rules', () => {
  it('refuses malformed entries and unknown accounts, and posted rows are append-only', async () => {
    const db = await freshLedger();
    try {
      const at = new Date().toISOString();
      const bad = async (postings: NewPosting[]) =>
        postEntry(db, { id: entryId(), kind: 'TRANSFER', description: 'x', postedAt: at, postings }).catch((e: unknown) => e);
      expect(
        await bad([
          { accountId: 'ext', amountMinor: 0n, currency: 'USD' },
          { accountId: 'chk_a', amountMinor: 0n, currency: 'USD' },
        ]),
      ).toMatchObject({ code: 'INVALID_ENTRY' });
      expect(await bad([{ accountId: 'ext', amountMinor: -1n, currency: 'USD' }])).toMatchObject({ code: 'INVALID_ENTRY' });
      expect(
        await bad([
          { accountId: 'ext', amountMinor: -1n, currency: 'USD' },
          { accountId: 'chk_eur', amountMinor: 1n, currency: 'EUR' },
        ]),
      ).toMatchObject({ code: 'UNBALANCED_ENTRY' });
      expect(
        await bad([
          { accountId: 'ext', amountMinor: -1n, currency: 'USD' },
          { accountId: 'chk_eur', amountMinor: 1n, currency: 'USD' },
        ]),
      ).toMatchObject({ code: 'CURRENCY_MISMATCH' });
      expect(
        await bad([
          { accountId: 'ext', amountMinor: -1n, currency: 'USD' },
          { accountId: 'nope', amountMinor: 1n, currency: 'USD' },
        ]),
      ).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
      expect(
        await bad([
          { accountId: 'ext', amountMinor: -1n, currency: 'XXX' },
          { accountId: 'chk_a', amountMinor: 1n, currency: 'XXX' },
        ]),
      ).toMatchObject({ code: 'INVALID_ENTRY' });
      expect(
        await bad([
          { accountId: 'ext', amountMinor: -1 as unknown as bigint, currency: 'USD' },
          { accountId: 'chk_a', amountMinor: 1n, currency: 'USD' },
        ]),
      ).toMatchObject({ code: 'INVALID_ENTRY' });
      expect(Number(((await db('postings').count({ n: '*' }).first()) as { n: unknown }).n)).toBe(0);

      await postEntry(db, {
        id: 'je_keep',
        kind: 'DEPOSIT',
        description: 'd',
        postedAt: at,
        postings: [
          { accountId: 'ext', amountMinor: -5n, currency: 'USD' },
          { accountId: 'chk_a', amountMinor: 5n, currency: 'USD' },
        ],
      });
      await expect(db('postings').update({ amount_minor: 500 })).rejects.toThrow(/append-only/);
      await expect(db('postings').delete()).rejects.toThrow(/append-only/);
      await expect(db('journal_entries').where({ id: 'je_keep' }).update({ description: 'changed' })).rejects.toThrow(/append-only/);
      expect((await verifyLedger(db)).ok).toBe(true);
    } finally {
      await db.destroy();
    }
  });

  it('verifyLedger reports a cached balance that drifted and an entry that does not balance', async () => {
    const db = await freshLedger();
    try {
      const at = new Date().toISOString();
      await postEntry(db, {
        id: 'je_ok',
        kind: 'DEPOSIT',
        description: 'd',
        postedAt: at,
        postings: [
          { accountId: 'ext', amountMinor: -700n, currency: 'USD' },
          { accountId: 'chk_a', amountMinor: 700n, currency: 'USD' },
        ],
      });
      expect((await verifyLedger(db)).ok).toBe(true);
      await db('ledger_accounts').where({ id: 'chk_a' }).update({ balance_minor: 701 });
      const drifted = await verifyLedger(db);
      expect(drifted.ok).toBe(false);
      expect(drifted.problems.join('\n')).toMatch(/chk_a: cached balance 701 != sum of postings 700/);
      await db('ledger_accounts').where({ id: 'chk_a' }).update({ balance_minor: 700 });
      // Someone bypasses the ledger module: a one-sided posting.
      await db('journal_entries').insert({ id: 'je_bad', kind: 'FEE', description: 'bad', posted_at: at });
      await db('postings').insert({ entry_id: 'je_bad', account_id: 'chk_b', amount_minor: 3, currency: 'USD', posted_at: at });
      await db('ledger_accounts').where({ id: 'chk_b' }).update({ balance_minor: 3 });
      const broken = await verifyLedger(db);
      expect(broken.ok).toBe(false);
      expect(broken.problems.join('\n')).toMatch(/je_bad: USD postings add up to 3/);
      expect(broken.problems.join('\n')).toMatch(/je_bad has 1 posting/);
    } finally {
      await db.destroy();
    }
  });
});

describe('serialization across connections (as across processes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-ledger-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('three connections racing to spend one balance never overdraw it', async () => {
    const file = path.join(dir, 'payments.sqlite');
    const setup = await freshLedger(file);
    await postEntry(setup, {
      id: 'je_fund',
      kind: 'DEPOSIT',
      description: 'fund',
      postedAt: new Date().toISOString(),
      postings: [
        { accountId: 'ext', amountMinor: -10_000n, currency: 'USD' },
        { accountId: 'chk_a', amountMinor: 10_000n, currency: 'USD' },
      ],
    });
    await setup.destroy();
    // Three independent connections (knex pools of one), like three server processes.
    const conns = [openDb({ sqliteFile: file }), openDb({ sqliteFile: file }), openDb({ sqliteFile: file })];
    try {
      const attempts = conns.flatMap((db, c) =>
        Array.from({ length: 25 }, (_, i) =>
          postEntry(db, {
            id: `je_race_${c}_${i}`,
            kind: 'PURCHASE',
            description: 'race',
            postedAt: new Date().toISOString(),
            postings: [
              { accountId: 'chk_a', amountMinor: -300n, currency: 'USD' },
              { accountId: 'shop', amountMinor: 300n, currency: 'USD' },
            ],
          }).then(
            () => 'ok',
            (err: unknown) => (err instanceof LedgerError ? err.code : `unexpected: ${String(err)}`),
          ),
        ),
      );
      const outcomes = await Promise.all(attempts);
      // 33 x 3.00 = 99.00 <= 100.00: exactly 33 succeed; the rest are clean refusals, not lock errors.
      expect(outcomes.filter((o) => o === 'ok').length).toBe(33);
      expect(outcomes.filter((o) => o !== 'ok').every((o) => o === 'INSUFFICIENT_FUNDS')).toBe(true);
      const b = await cached(conns[0]!);
      expect(b.get('chk_a')).toBe(100n);
      expect(b.get('shop')).toBe(9_900n);
      expect((await verifyLedger(conns[1]!)).problems).toEqual([]);
    } finally {
      for (const c of conns) await c.destroy();
    }
  });
});
