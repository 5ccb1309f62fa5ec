/**
 * Ledger verification (`npm run ledger:verify`, and tests): recomputes every ledger account's
 * balance from its postings and compares it with the cached balance, checks that every journal
 * entry adds up to zero per currency and has at least two postings, that postings are in their
 * account's currency, that no account is beyond its floor (deposit < 0, card over limit), and that
 * every account's posting counter (history's totalCount) equals its number of postings, that
 * every daily transfer-usage counter (the daily limit's running total) equals the sum of that
 * sender's transfers in that currency that UTC day.
 * All sums are exact: SQL sums are read as text and compared as bigint.
 */
import type { Knex } from 'knex';
import { formatMinor, toBigInt } from '../../lib/money.js';
import { toLedgerAccount } from './data.js';
import { floorOf } from './ledger/rules.js';

export interface LedgerVerification {
  ok: boolean;
  accounts: number;
  entries: number;
  postings: number;
  transfers: number;
  purchases: number;
  events: number;
  /** Per currency: sum of every posting and sum of every cached balance (both must be 0). */
  totals: Record<string, { postingsMinor: bigint; cachedBalancesMinor: bigint }>;
  problems: string[];
}

const exact = (v: unknown): bigint => (typeof v === 'string' ? BigInt(v) : toBigInt(v));

async function count(db: Knex, table: string): Promise<number> {
  if (!(await db.schema.hasTable(table))) return 0;
  const row = (await db(table).count({ n: '*' }).first()) as { n: unknown } | undefined;
  return Number(row?.n ?? 0);
}

export async function verifyLedger(db: Knex): Promise<LedgerVerification> {
  const problems: string[] = [];
  const accounts = ((await db('ledger_accounts').select('*').orderBy('id')) as Parameters<typeof toLedgerAccount>[0][]).map(toLedgerAccount);
  const sums = (await db('postings')
    .select('account_id')
    .select(db.raw('CAST(SUM(amount_minor) AS TEXT) AS total'))
    .count({ n: '*' })
    .groupBy('account_id')) as { account_id: string; total: unknown; n: unknown }[];
  const byAccount = new Map(sums.map((s) => [s.account_id, exact(s.total)]));
  const postingsOf = new Map(sums.map((s) => [s.account_id, Number(s.n)]));
  const counters = (await db('ledger_accounts').select('id', 'posting_count')) as { id: string; posting_count: unknown }[];
  for (const c of counters) {
    const n = postingsOf.get(c.id) ?? 0;
    if (Number(c.posting_count) !== n) problems.push(`account ${c.id}: posting counter ${Number(c.posting_count)} != ${n} postings`);
  }
  const totals: LedgerVerification['totals'] = {};
  const known = new Set(accounts.map((a) => a.id));
  for (const a of accounts) {
    const recomputed = byAccount.get(a.id) ?? 0n;
    const t = (totals[a.currency] ??= { postingsMinor: 0n, cachedBalancesMinor: 0n });
    t.postingsMinor += recomputed;
    t.cachedBalancesMinor += a.balanceMinor;
    if (recomputed !== a.balanceMinor)
      problems.push(`account ${a.id}: cached balance ${a.balanceMinor} != sum of postings ${recomputed} (${a.currency} minor units)`);
    const floor = floorOf(a);
    if (floor !== null && a.balanceMinor < floor) problems.push(`account ${a.id} (${a.kind}): balance ${a.balanceMinor} is below its floor ${floor}`);
  }
  for (const id of byAccount.keys()) if (!known.has(id)) problems.push(`postings reference unknown ledger account ${id}`);
  for (const [currency, t] of Object.entries(totals)) {
    if (t.postingsMinor !== 0n) problems.push(`${currency}: postings over all accounts add up to ${t.postingsMinor}, not 0`);
    if (t.cachedBalancesMinor !== 0n) problems.push(`${currency}: cached balances add up to ${t.cachedBalancesMinor}, not 0`);
  }

  const unbalanced = (await db('postings')
    .select('entry_id', 'currency')
    .select(db.raw('CAST(SUM(amount_minor) AS TEXT) AS total'))
    .groupBy('entry_id', 'currency')
    .havingRaw('SUM(amount_minor) <> 0')) as { entry_id: string; currency: string; total: unknown }[];
  for (const u of unbalanced) problems.push(`journal entry ${u.entry_id}: ${u.currency} postings add up to ${exact(u.total)}, not 0`);
  const thin = (await db('journal_entries as e')
    .leftJoin('postings as p', 'p.entry_id', 'e.id')
    .select('e.id')
    .count({ n: 'p.id' })
    .groupBy('e.id')
    .havingRaw('COUNT(p.id) < 2')) as { id: string; n: unknown }[];
  for (const t of thin) problems.push(`journal entry ${t.id} has ${Number(t.n)} posting(s); a double entry needs at least 2`);
  const wrongCurrency = (await db('postings as p')
    .join('ledger_accounts as a', 'a.id', 'p.account_id')
    .whereRaw('p.currency <> a.currency')
    .select('p.id', 'p.account_id', 'p.currency', 'a.currency as account_currency')) as {
    id: unknown;
    account_id: string;
    currency: string;
    account_currency: string;
  }[];
  for (const w of wrongCurrency) problems.push(`posting ${String(w.id)} on ${w.account_id} is in ${w.currency}, the account holds ${w.account_currency}`);

  if (await db.schema.hasTable('transfer_daily_usage')) {
    const day = 'substr(created_at, 1, 10)';
    const sent = (await db('transfers')
      .select('from_user_id', 'currency', db.raw(`${day} AS day`), db.raw('CAST(SUM(amount_minor) AS TEXT) AS total'))
      .groupByRaw(`from_user_id, currency, ${day}`)) as { from_user_id: string; currency: string; day: string; total: unknown }[];
    const counters = (await db('transfer_daily_usage').select('user_id', 'currency', 'day', db.raw('CAST(sent_minor AS TEXT) AS sent'))) as {
      user_id: string;
      currency: string;
      day: string;
      sent: unknown;
    }[];
    const k = (u: string, c: string, d: string) => `${u} ${c} ${d}`;
    const counted = new Map(counters.map((c) => [k(c.user_id, c.currency, c.day), exact(c.sent)]));
    const summed = new Map(sent.map((s) => [k(s.from_user_id, s.currency, s.day), exact(s.total)]));
    for (const key of new Set([...counted.keys(), ...summed.keys()])) {
      const c = counted.get(key) ?? 0n;
      const t = summed.get(key) ?? 0n;
      if (c !== t) problems.push(`daily transfer usage ${key}: counter ${c} != sum of transfers ${t} (minor units)`);
    }
  }

  return {
    ok: problems.length === 0,
    accounts: accounts.length,
    entries: await count(db, 'journal_entries'),
    postings: await count(db, 'postings'),
    transfers: await count(db, 'transfers'),
    purchases: await count(db, 'purchases'),
    events: await count(db, 'outbox_events'),
    totals,
    problems,
  };
}

/** Human-readable report, as `npm run ledger:verify` prints it. */
export function formatVerification(v: LedgerVerification): string {
  const lines = [
    `Checked ${v.accounts} ledger accounts, ${v.entries} journal entries, ${v.postings} postings (${v.transfers} transfers, ${v.purchases} purchases, ${v.events} outbox events).`,
    ...Object.entries(v.totals).map(
      ([c, t]) => `  ${c}: postings total ${formatMinor(t.postingsMinor, c)}, cached balances total ${formatMinor(t.cachedBalancesMinor, c)} (both must be 0)`,
    ),
    "  checks: cached balance = sum of postings (every account); every entry sums to 0 per currency and has >= 2 postings; postings in the account currency; no account below its floor; daily transfer usage = sum of the day's transfers",
  ];
  if (v.ok) lines.push('OK: the ledger balances.');
  else lines.push(`FAILED: ${v.problems.length} problem(s):`, ...v.problems.map((p) => `  - ${p}`));
  return lines.join('\n');
}
