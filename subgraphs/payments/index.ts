/**
 * The payments subgraph (payments zone): the double-entry ledger, money movement, balances and
 * history. Each running service builds its collaborators once (services.ts) and hands them to
 * every request (ctx.services), internal route and worker.
 */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { remoteConsentGate } from './consent.js';
import { internalRoutes } from './internal.js';
import { IDEMPOTENCY_PRUNE_INTERVAL_MS } from './limits.js';
import { createLoaders, type PaymentsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';
import { createPaymentsServices, type PaymentsServices } from './services.js';

export const payments: SubgraphDefinition<PaymentsLoaders, PaymentsServices> = {
  name: 'payments',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  createServices: (env) => createPaymentsServices({ db: env.db, logger: env.logger, consent: remoteConsentGate(env) }),
  createLoaders: (db) => createLoaders(db),
  internalRoutes,
  /** Serves the event feed's long polls (event-feed.ts); prunes idempotency keys past their retention (limits.ts), at start and then hourly. */
  async startWorkers(env, server, services) {
    const stopFeed = await services.feed.serve(server, env.redisUrl);
    const prune = () => {
      services.movements.pruneIdempotencyKeys().catch((err: unknown) => {
        env.logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'pruning idempotency keys failed');
      });
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
