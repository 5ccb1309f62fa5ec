/**
 * The double-entry ledger of one payments service: the only code that writes journal entries,
 * postings, cached balances, outbox events and account freezes, and the only code that decides
 * whether money may move (rules.ts). Callers (movements) never write ledger tables: they hand the
 * ledger a batch plan, and the ledger runs it in one transaction under the write lock, checks
 * every entry the plan posts alone and in order (ledger/batch.ts), writes what was accepted,
 * commits, and then tells its commit listeners (`onCommit`) when outbox events were appended.
 *
 * Group commit (docs/money.md, "Throughput"): items submitted while a batch is running wait and run
 * together as the next batch (at most MAX_BATCH, one batch of a queue in flight). When a batch hits
 * a database error nothing of it was committed and every item re-runs alone, so only the faulty
 * one fails; a lone item re-runs after a PostgreSQL deadlock or serialization failure too.
 */
import type { Knex } from 'knex';
import type { Logger } from '../../../lib/log.js';
import { LedgerBatch } from './batch.js';
import { GroupCommit } from './group-commit.js';
import { freezeAccountIn, ledgerTransaction, readOutboxEvents, type FreezeResult, type OutboxEvent } from './store.js';

export type { LedgerBatch, SettlementView } from './batch.js';
export { LedgerError, type NewEntry, type NewPosting } from './rules.js';
export type { FreezeResult, NewOutboxEvent, OutboxEvent } from './store.js';

/** Largest number of items committed in one transaction. */
const MAX_BATCH = 64;
/** Re-runs of a lone item after a PostgreSQL deadlock or serialization failure. */
const TRANSIENT_RETRIES = 3;

/**
 * What a plan decided for a batch: one outcome per item, in order, and the plan's own rows of the
 * accepted items (written in the same transaction, after the entries and before the events).
 */
export interface PlannedBatch<O> {
  outcomes: O[];
  records?: (trx: Knex.Transaction) => Promise<void>;
}

/**
 * Decides a batch of items inside one ledger transaction: reads what it needs (its own tables
 * through `batch.trx`, ledger accounts through `batch.lock`), then decides each item in order,
 * posting the accepted ones' entries with `batch.post`. An item's refusal is an outcome, never an
 * exception: a throw rolls the whole batch back.
 */
export type BatchPlan<I, O> = (batch: LedgerBatch, items: readonly I[]) => Promise<PlannedBatch<O>>;

export interface GroupCommitOptions {
  /**
   * A database error after which a lone item re-runs once, because the re-run will see what made
   * it fail (e.g. a unique key another process inserted first).
   */
  retryOnceOn?: (err: unknown) => boolean;
}

export interface Ledger {
  /**
   * A group-committed queue for `plan`: the returned function submits one item and resolves with
   * its outcome once its batch committed (or rejects with the database error of its lone re-run).
   */
  groupCommit<I, O>(plan: BatchPlan<I, O>, options?: GroupCommitOptions): (item: I) => Promise<O>;
  /** Committed outbox events after an id, oldest first, at most `limit`. */
  readEvents(after: number, limit: number): Promise<OutboxEvent[]>;
  /** Freezes a user's account (idempotent) and records which alert did it. */
  freezeAccount(accountId: string, alertId: string, now?: Date): Promise<FreezeResult>;
  /**
   * Calls `listener` after every commit that appended outbox events, until the returned function
   * is called. Runs after the commit, never inside the transaction; a throwing listener is logged.
   */
  onCommit(listener: () => void): () => void;
}

/** PostgreSQL deadlock / serialization failure: the transaction rolled back and may be re-run. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '40P01' || code === '40001';
}

export function createLedger({ db, logger }: { db: Knex; logger: Logger }): Ledger {
  const listeners = new Set<() => void>();

  const committed = () => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (err) {
        // The movements are committed: a listener's fault must not turn them into failures.
        logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'ledger commit listener failed');
      }
    }
  };

  /** One transaction: plan, write, commit, then notify. Throws (nothing committed) on a database error. */
  async function run<I, O>(plan: BatchPlan<I, O>, items: readonly I[]): Promise<O[]> {
    const { outcomes, appended } = await ledgerTransaction(db, async (trx) => {
      const batch = new LedgerBatch(trx);
      const planned = await plan(batch, items);
      return { outcomes: planned.outcomes, appended: await batch.flush(planned.records) };
    });
    if (appended > 0) committed();
    return outcomes;
  }

  async function runAlone<I, O>(plan: BatchPlan<I, O>, item: I, options: GroupCommitOptions): Promise<O> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await run(plan, [item]))[0]!;
      } catch (err) {
        if ((attempt === 0 && options.retryOnceOn?.(err)) || (attempt < TRANSIENT_RETRIES && isTransient(err))) continue;
        throw err;
      }
    }
  }

  return {
    groupCommit<I, O>(plan: BatchPlan<I, O>, options: GroupCommitOptions = {}) {
      const queue = new GroupCommit<I, O>(
        (items) => run(plan, items),
        (item) => runAlone(plan, item, options),
        MAX_BATCH,
      );
      return (item: I) => queue.submit(item);
    },
    readEvents: (after, limit) => readOutboxEvents(db, after, limit),
    freezeAccount: (accountId, alertId, now = new Date()) => ledgerTransaction(db, (trx) => freezeAccountIn(trx, accountId, alertId, now.toISOString())),
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
