/** The payments subgraph: the double-entry ledger, balances and history (payments zone). */
import type { Knex } from 'knex';
import { loadSdl, type SubgraphDefinition } from '../../lib/subgraph.js';
import type { Fixture } from '../../seeds/fixture.js';
import { internalRoutes, startEventFeed } from './internal.js';
import { IDEMPOTENCY_PRUNE_INTERVAL_MS } from './limits.js';
import { createLoaders, type PaymentsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { pruneIdempotencyKeys } from './movements.js';
import { resolvers } from './resolvers.js';

async function seed(db: Knex, f: Fixture): Promise<void> {
  const balances = new Map<string, bigint>();
  const merchants = new Map(f.merchants.map((m) => [m.id, m]));
  for (const e of f.entries) for (const p of e.postings) balances.set(p.accountId, (balances.get(p.accountId) ?? 0n) + p.amountMinor);
  await db.transaction(async (trx) => {
    await trx.batchInsert('parties', f.users.map((u) => ({ user_id: u.id, handle: u.handle, country: u.country })), 200);
    const ledgerAccounts: Record<string, unknown>[] = [
        ...f.accounts.map((a) => ({ id: a.id, owner_user_id: a.userId, kind: a.kind, currency: a.currency, credit_limit_minor: a.creditLimitMinor?.toString() ?? null, frozen: false, balance_minor: (balances.get(a.id) ?? 0n).toString(), merchant_id: null })),
        ...f.systemAccounts.map((s) => {
          // Settlement accounts carry the merchant's directory data, for purchase events.
          const m = s.merchantId ? merchants.get(s.merchantId) : undefined;
          return {
            id: s.id, owner_user_id: null, kind: s.kind, currency: s.currency, credit_limit_minor: null, frozen: false, balance_minor: (balances.get(s.id) ?? 0n).toString(), merchant_id: s.merchantId,
            merchant_name: m?.name ?? null, merchant_category: m?.category ?? null, merchant_country: m?.country ?? null, merchant_mcc: m?.mcc ?? null,
          };
        }),
    ];
    await trx.batchInsert('ledger_accounts', ledgerAccounts, 200);
    await trx.batchInsert('journal_entries', f.entries.map((e) => ({ id: e.id, kind: e.kind, description: e.description, posted_at: e.postedAt })), 200);
    await trx.batchInsert(
      'postings',
      f.entries.flatMap((e) =>
        e.postings.map((p) => ({ entry_id: e.id, account_id: p.accountId, amount_minor: p.amountMinor.toString(), currency: 'USD', posted_at: e.postedAt, merchant_id: p.merchantId ?? null, counterparty_user_id: p.counterpartyUserId ?? null })),
      ),
      200,
    );
  });
}

export const payments: SubgraphDefinition<PaymentsLoaders> = {
  name: 'payments',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  seed,
  seededTable: 'journal_entries',
  createLoaders: (db) => createLoaders(db),
  internalRoutes,
  /** Prunes idempotency keys past their retention (limits.ts), at start and then hourly; serves long-poll wake-ups of the event feed (internal.ts). */
  async startWorkers(env, server) {
    const stopFeed = await startEventFeed(env, server);
    const prune = () => {
      pruneIdempotencyKeys(env.db).catch((err: unknown) => console.error('[payments] pruning idempotency keys failed', err));
    };
    prune();
    const timer = setInterval(prune, IDEMPOTENCY_PRUNE_INTERVAL_MS);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await stopFeed();
    };
  },
};
