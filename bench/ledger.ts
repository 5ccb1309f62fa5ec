/**
 * The ledger's own legs (docs/performance.md, "Ledger"): transfers straight into the payments
 * service's movements module in process (no HTTP), on a fresh seeded in-memory payments database per
 * SQLite driver, against the limit of SQLite itself here: a raw better-sqlite3 loop of prepared
 * statements doing the same reads and writes per transfer (idempotency key lookup, recipient,
 * both accounts, daily usage; journal entry, two postings, two balance and posting-counter updates, transfer row,
 * usage counter, idempotency key, outbox event), in transactions of the same size as the
 * ledger's group commit reaches with that many callers. Same work on both sides: 0.01 USD round
 * robin between the four seeded users, so every balance stays where it started.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDriver } from '../lib/db.js';
import { createLogger } from '../lib/log.js';
import { prepareDb } from '../runtime/database.js';
import { createPaymentsServices } from '../subgraphs/payments/services.js';
import { verifyLedger } from '../subgraphs/payments/verify.js';
import { loop, type Leg, type LoopResult } from './measure.js';

export const SENDERS = ['alice', 'bob', 'carol', 'dave'] as const;

export interface LedgerDb {
  db: Knex;
  close(): Promise<void>;
}

/** A fresh payments database (migrated, seeded) on `driver`, in memory. */
export async function paymentsDb(driver: SqliteDriver): Promise<LedgerDb> {
  const { db } = await prepareDb('payments', ':memory:', undefined, { sqliteDriver: driver });
  return { db, close: () => db.destroy() };
}

/** Closed loops of `callers` transfers into the movements module on `db` (its own group commit). */
export function ledgerLeg(db: Knex, callers: number, tag: string): Leg {
  const { movements } = createPaymentsServices({ db, logger: createLogger('payments-bench', { level: 'warn' }) });
  let i = 0;
  return (seconds) =>
    loop(
      async () => {
        const n = i++;
        const from = SENDERS[n % 4]!;
        const r = await movements.sendTransfer(`usr_${from}`, {
          fromAccountId: `acc_${from}_checking`,
          toHandle: SENDERS[(n + 1) % 4]!,
          amount: { amount: '0.01', currency: 'USD' },
          idempotencyKey: `bench-${tag}-${process.pid}-${n}`,
        });
        if (r.userErrors.length) throw new Error(r.userErrors[0]!.code);
      },
      seconds,
      callers,
    );
}

/** The pool's one connection, handed back at once: the raw loop is synchronous, so knex never interleaves with it. */
async function rawConnection(db: Knex): Promise<BetterSqlite3.Database> {
  const c = (await db.client.acquireConnection()) as BetterSqlite3.Database;
  await db.client.releaseConnection(c);
  return c;
}

/**
 * The raw limit: the same transfers as ledgerLeg, `batch` per transaction, with prepared
 * statements on the better-sqlite3 connection itself (one statement per row, the simplest way to
 * use SQLite well). Synchronous: each transaction runs to its end; the loop yields between them.
 */
export async function rawLeg(db: Knex, batch: number): Promise<Leg> {
  const c = await rawConnection(db);
  const s = {
    lock: c.prepare('UPDATE ledger_write_lock SET version = version + 1 WHERE id = 1'),
    key: c.prepare('SELECT request_hash, result FROM idempotency_keys WHERE user_id = ? AND operation = ? AND idem_key = ?'),
    party: c.prepare('SELECT user_id FROM parties WHERE lower(handle) = ?'),
    account: c.prepare('SELECT id, owner_user_id, kind, currency, balance_minor, frozen FROM ledger_accounts WHERE id = ?'),
    receiving: c.prepare(
      "SELECT id FROM ledger_accounts WHERE owner_user_id = ? AND kind IN ('CHECKING', 'SAVINGS') AND currency = ? ORDER BY kind, id LIMIT 1",
    ),
    usage: c.prepare('SELECT sent_minor FROM transfer_daily_usage WHERE user_id = ? AND currency = ? AND day = ?'),
    entry: c.prepare('INSERT INTO journal_entries (id, kind, description, posted_at) VALUES (?, ?, ?, ?)'),
    posting: c.prepare(
      'INSERT INTO postings (entry_id, account_id, amount_minor, currency, posted_at, merchant_id, counterparty_user_id) VALUES (?, ?, ?, ?, ?, NULL, ?)',
    ),
    balance: c.prepare('UPDATE ledger_accounts SET balance_minor = ?, posting_count = posting_count + 1 WHERE id = ?'),
    transfer: c.prepare(
      "INSERT INTO transfers (id, entry_id, from_account_id, from_user_id, to_account_id, to_user_id, amount_minor, currency, note, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 'POSTED', ?)",
    ),
    usageUp: c.prepare(
      'INSERT INTO transfer_daily_usage (user_id, currency, day, sent_minor) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, currency, day) DO UPDATE SET sent_minor = excluded.sent_minor',
    ),
    idem: c.prepare('INSERT INTO idempotency_keys (user_id, operation, idem_key, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    outbox: c.prepare('INSERT INTO outbox_events (event_type, payload, created_at) VALUES (?, ?, ?)'),
  };
  for (const st of [s.account, s.usage]) st.safeIntegers(true);
  let n = 0;
  const one = () => {
    const i = n++;
    const from = SENDERS[i % 4]!;
    const userId = `usr_${from}`;
    const key = `bench-raw-${process.pid}-${i}`;
    const now = new Date().toISOString();
    const hash = createHash('sha256')
      .update(JSON.stringify(['sendTransfer', `acc_${from}_checking`, SENDERS[(i + 1) % 4], '1', 'USD', null]))
      .digest('hex');
    if (s.key.get(userId, 'sendTransfer', key)) throw new Error('replayed key');
    const to = s.party.get(SENDERS[(i + 1) % 4]) as { user_id: string };
    const src = s.account.get(`acc_${from}_checking`) as { id: string; balance_minor: bigint; frozen: bigint };
    const dst = s.receiving.get(to.user_id, 'USD') as { id: string };
    const dstRow = s.account.get(dst.id) as { balance_minor: bigint };
    const day = now.slice(0, 10);
    const used = (s.usage.get(userId, 'USD', day) as { sent_minor: bigint } | undefined)?.sent_minor ?? 0n;
    if (src.frozen || src.balance_minor < 1n) throw new Error('refused');
    const entryId = `je_${randomUUID()}`;
    const transferId = `trf_${randomUUID()}`;
    s.entry.run(entryId, 'TRANSFER', 'Transfer', now);
    s.posting.run(entryId, src.id, -1, 'USD', now, to.user_id);
    s.posting.run(entryId, dst.id, 1, 'USD', now, userId);
    s.balance.run(src.balance_minor - 1n, src.id);
    s.balance.run(dstRow.balance_minor + 1n, dst.id);
    s.transfer.run(transferId, entryId, src.id, userId, dst.id, to.user_id, 1, 'USD', now);
    s.usageUp.run(userId, 'USD', day, used + 1n);
    s.idem.run(userId, 'sendTransfer', key, hash, JSON.stringify({ transferId }), now);
    s.outbox.run(
      'TRANSFER_POSTED',
      JSON.stringify({ transferId, fromAccountId: src.id, fromUserId: userId, toUserId: to.user_id, amountMinor: '1', currency: 'USD', postedAt: now }),
      now,
    );
  };
  const txn = c.transaction((k: number) => {
    s.lock.run();
    for (let j = 0; j < k; j++) one();
  });
  return async (seconds): Promise<LoopResult> => {
    const t0 = process.hrtime.bigint();
    const end = Date.now() + seconds * 1000;
    const latencies: number[] = [];
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      txn(batch);
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      // Each transfer of the batch waited for the whole transaction.
      for (let j = 0; j < batch; j++) latencies.push(ms);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { latencies, errors: 0, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  };
}

/** After the legs: the ledger still verifies (balanced entries, cached balances = postings). */
export async function assertVerified(db: Knex, what: string): Promise<void> {
  const v = await verifyLedger(db);
  if (!v.ok) throw new Error(`${what}: ledger:verify failed after the ledger legs`);
}
