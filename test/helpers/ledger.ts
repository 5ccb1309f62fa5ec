/** Reading a payments database's ledger: cached balances, and the rows money movement writes. */
import type { Knex } from 'knex';
import { toBigInt } from '../../lib/money.js';

/** Every ledger account's cached balance. */
export async function balances(db: Knex): Promise<Map<string, bigint>> {
  const rows = (await db('ledger_accounts').select('id', 'balance_minor')) as { id: string; balance_minor: unknown }[];
  return new Map(rows.map((r) => [r.id, toBigInt(r.balance_minor)]));
}

export async function balanceOf(db: Knex, accountId: string): Promise<bigint> {
  const b = (await balances(db)).get(accountId);
  if (b === undefined) throw new Error(`no account ${accountId}`);
  return b;
}

/** Row counts of every table money movement writes. */
export async function writeCounts(db: Knex): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['journal_entries', 'postings', 'transfers', 'purchases', 'outbox_events', 'idempotency_keys']) {
    const row = (await db(t).count({ n: '*' }).first()) as { n: unknown };
    out[t] = Number(row.n);
  }
  return out;
}

/** Snapshot of everything money movement could change; compare before and after a refusal. */
export async function snapshot(db: Knex): Promise<{ balances: Record<string, string>; counts: Record<string, number> }> {
  const b = await balances(db);
  return { balances: Object.fromEntries([...b].map(([k, v]) => [k, v.toString()])), counts: await writeCounts(db) };
}
