/**
 * One ledger transaction's running state, as a batch plan sees it (see ledger/index.ts): the
 * accounts read under the lock, the entries accepted so far with the balances after them, and
 * their outbox events. A plan reads accounts through `lock` and `account`, asks the rules with
 * `check` and posts with `post`; each entry is checked alone against the balances left by the
 * entries posted before it, so items of one batch behave exactly as if they ran one by one.
 * Balances and frozen flags are not exposed: whether money may move is the rules' answer only.
 */
import type { Knex } from 'knex';
import { toLedgerAccount, type LedgerAccountRow } from '../data.js';
import { applyEntry, LedgerError, RECEIVING_KINDS, receivingAccountOf, SETTLEMENT_KIND, type NewEntry } from './rules.js';
import { appendOutboxEvents, lockAccountRows, writeEntries, type NewOutboxEvent, type RawAccountRow } from './store.js';

/** What a plan may know of an account: who owns it and what it holds. */
export interface AccountView {
  id: string;
  ownerUserId: string | null;
  kind: string;
  currency: string;
}

/** A merchant's settlement account, with the merchant details stored on it. */
export interface SettlementView extends AccountView {
  merchantId: string;
  merchantName: string | null;
  merchantCategory: string | null;
  merchantCountry: string | null;
  merchantMcc: string | null;
}

/** The accounts a plan needs: by id, merchants' settlement accounts, and where transfers to these users land. */
export interface LockRequest {
  accountIds: readonly string[];
  merchantIds?: readonly string[];
  /** Recipients: their receiving accounts in these currencies are read (and locked) too. */
  recipients?: { userIds: readonly string[]; currencies: readonly string[] };
}

const view = (a: LedgerAccountRow): AccountView => ({ id: a.id, ownerUserId: a.ownerUserId, kind: a.kind, currency: a.currency });

export class LedgerBatch {
  private readonly accounts = new Map<string, LedgerAccountRow>();
  private readonly settlements = new Map<string, SettlementView>();
  private readonly entries: NewEntry[] = [];
  private readonly balances = new Map<string, bigint>();
  private readonly events: NewOutboxEvent[] = [];

  /** The transaction, for the plan's own tables only: ledger tables are read and written through this class. */
  constructor(readonly trx: Knex.Transaction) {}

  /** Reads (PostgreSQL: and locks) the requested accounts, in one statement; call once, before any check. */
  async lock(req: LockRequest): Promise<void> {
    const rows: RawAccountRow[] = await lockAccountRows(this.trx, {
      ids: req.accountIds,
      merchantIds: req.merchantIds ?? [],
      owned: { userIds: req.recipients?.userIds ?? [], kinds: RECEIVING_KINDS, currencies: req.recipients?.currencies ?? [] },
    });
    for (const r of rows) {
      const account = toLedgerAccount(r);
      this.accounts.set(account.id, account);
      if (account.kind === SETTLEMENT_KIND && account.merchantId) {
        this.settlements.set(account.merchantId, {
          ...view(account),
          merchantId: account.merchantId,
          merchantName: r.merchant_name ?? null,
          merchantCategory: r.merchant_category ?? null,
          merchantCountry: r.merchant_country ?? null,
          merchantMcc: r.merchant_mcc ?? null,
        });
      }
    }
  }

  /** A locked account, or undefined when it does not exist (or was not requested). */
  account(id: string): AccountView | undefined {
    const a = this.accounts.get(id);
    return a && view(a);
  }

  /** The settlement account of a merchant, when the merchant has one (and it was requested). */
  settlementAccount(merchantId: string): SettlementView | undefined {
    return this.settlements.get(merchantId);
  }

  /** Where a transfer to `userId` in `currency` lands (rules.receivingAccountOf), among the locked accounts. */
  receivingAccount(userId: string, currency: string): string | null {
    return receivingAccountOf(
      [...this.accounts.values()].filter((a) => a.ownerUserId === userId),
      currency,
    );
  }

  /** The rules' verdict on `entry` now, after the entries posted so far: null when it may post. Changes nothing. */
  check(entry: NewEntry): LedgerError | null {
    try {
      applyEntry(this.accounts, entry);
      return null;
    } catch (err) {
      if (err instanceof LedgerError) return err;
      throw err;
    }
  }

  /**
   * Posts an entry and its outbox events: the running balances move, and the entry, the new
   * balances and the events are written when the plan returns. Throws the rules' LedgerError when
   * the entry may not post (check first to refuse cleanly).
   */
  post(entry: NewEntry, events: readonly NewOutboxEvent[] = []): void {
    const after = applyEntry(this.accounts, entry);
    for (const [accountId, balance] of after) {
      this.accounts.set(accountId, { ...this.accounts.get(accountId)!, balanceMinor: balance });
      this.balances.set(accountId, balance);
    }
    this.entries.push(entry);
    this.events.push(...events);
  }

  /**
   * Writes everything posted, in the transaction (ledger/index.ts calls it once, after the plan):
   * the entries, their postings and the final balances, then the plan's own rows (`records`, which
   * may reference the entries), then the outbox events, last (appendOutboxEvents takes the last
   * lock). Returns how many events were appended.
   */
  async flush(records?: (trx: Knex.Transaction) => Promise<void>): Promise<number> {
    await writeEntries(this.trx, this.entries, this.balances);
    if (records) await records(this.trx);
    await appendOutboxEvents(this.trx, this.events);
    return this.events.length;
  }
}
