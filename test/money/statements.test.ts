/**
 * The cost of a batch of movements in SQL statements does not grow with its size (docs/money.md,
 * "Throughput"; docs/performance.md): a burst of N movements committed together runs one
 * transaction and the same statements whether N is 2 or 64, counted from knex's `query` events on
 * the payments database (every statement knex sends, BEGIN and COMMIT included). And the SQLite
 * driver under test is the one PAYGRAPH_SQLITE_DRIVER names (vitest.config.ts runs this folder on
 * both).
 */
import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SQLITE_DRIVER, openDb, sqliteDriver, sqliteDriverOf } from '../../lib/db.js';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import { freshPaymentsDb, HANDLES, newKey, paymentsServices, type PaymentsDb } from '../helpers/money.js';

const open: PaymentsDb[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

const MERCHANTS = ['mer_safeway', 'mer_blue_bottle', 'mer_whole_foods'];

/** Statements knex sends on `db` while `fn` runs. */
async function statementsDuring(db: Knex, fn: () => Promise<void>): Promise<string[]> {
  const sql: string[] = [];
  const on = (q: { sql: string }) => sql.push(q.sql);
  db.on('query', on);
  try {
    await fn();
  } finally {
    db.off('query', on);
  }
  return sql;
}

/** N movements submitted in one tick (so they share one batch): transfers and purchases, round robin over the seeded users. */
async function burst(p: PaymentsDb, n: number): Promise<string[]> {
  const { movements } = paymentsServices(p.db);
  return statementsDuring(p.db, async () => {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const from = HANDLES[i % 4]!;
        const amount = { amount: '0.01', currency: 'USD' };
        return i % 2 === 0
          ? movements.sendTransfer(`usr_${from}`, { fromAccountId: `acc_${from}_checking`, toHandle: HANDLES[(i + 1) % 4]!, amount, idempotencyKey: newKey() })
          : movements.makePurchase(`usr_${from}`, { accountId: `acc_${from}_checking`, merchantId: MERCHANTS[i % 3]!, amount, idempotencyKey: newKey() });
      }),
    );
    expect(results.flatMap((r) => r.userErrors)).toEqual([]);
  });
}

describe('a batch of movements costs the same statements however many it holds', () => {
  it('2 and 64 movements in one burst: one transaction each, the same statements', async () => {
    const p = await freshPaymentsDb();
    open.push(p);
    // A first burst warms up whatever runs once (it is counted too, and must match).
    const counts: Record<number, string[]> = {};
    for (const n of [2, 64, 2, 64]) counts[n] = await burst(p, n);
    const small = counts[2]!;
    const large = counts[64]!;
    expect(small.filter((s) => /^\s*begin/i.test(s))).toHaveLength(1);
    expect(large.filter((s) => /^\s*begin/i.test(s))).toHaveLength(1);
    // Same number of statements and the same kinds: verb and first table (the multi-row ones and
    // the key lookups just carry more rows or more OR terms).
    const shape = (sql: string[]) => sql.map((s) => `${s.trim().split(/\s/)[0]!.toLowerCase()} ${/[`"](\w+)[`"]/.exec(s)?.[1] ?? ''}`);
    expect(large.length).toBe(small.length);
    expect(shape(large)).toEqual(shape(small));
    expect((await verifyLedger(p.db)).ok).toBe(true);
  });
});

describe('the SQLite driver', () => {
  it('is the one PAYGRAPH_SQLITE_DRIVER names (default better-sqlite3), and an unknown name is refused', async () => {
    const expected = process.env.PAYGRAPH_SQLITE_DRIVER || DEFAULT_SQLITE_DRIVER;
    const db = openDb({ sqliteFile: ':memory:' });
    try {
      expect(sqliteDriverOf(db)).toBe(expected);
    } finally {
      await db.destroy();
    }
    expect(sqliteDriver({})).toBe('better-sqlite3');
    expect(sqliteDriver({ PAYGRAPH_SQLITE_DRIVER: 'sqlite3' })).toBe('sqlite3');
    expect(() => sqliteDriver({ PAYGRAPH_SQLITE_DRIVER: 'sqlite' })).toThrow(/PAYGRAPH_SQLITE_DRIVER must be one of/);
  });
});
