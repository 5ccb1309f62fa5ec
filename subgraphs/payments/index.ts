/** The payments subgraph: the double-entry ledger, balances and history (payments zone). */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { internalRoutes, startEventFeed } from './internal.js';
import { IDEMPOTENCY_PRUNE_INTERVAL_MS } from './limits.js';
import { createLoaders, type PaymentsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { pruneIdempotencyKeys } from './movements.js';
import { resolvers } from './resolvers.js';


export const payments: SubgraphDefinition<PaymentsLoaders> = {
  name: 'payments',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
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
