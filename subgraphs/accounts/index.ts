/** The accounts subgraph: users, institutions and linked accounts (payments zone), and the data-access log. */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { auditReadRoutes, auditRoute, type AccountsServices } from './audit.js';
import { AuditLog } from './audit-log.js';
import { consentRoute } from './consent/route.js';
import { createLoaders, type AccountsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

export const accounts: SubgraphDefinition<AccountsLoaders, AccountsServices> = {
  name: 'accounts',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  // The transparency log's checkpoint key is this service's own (audit-log.ts checkpointKeyOf).
  createServices: (env) => ({ auditLog: new AuditLog(env.db, env.signer.self, env.logger, env.auditOrigin) }),
  createLoaders: (db) => createLoaders(db),
  internalRoutes: {
    // The gateway's data-access log appends (fence/audit-sink.ts), from the gateway alone.
    audit: { callers: ['gateway'], handle: auditRoute },
    // The public log's checkpoints, proofs and entries, relayed by the gateway's /audit/* (no token).
    ...auditReadRoutes,
    // Consent decisions for the account data the payments subgraph owns (consent/route.ts), from payments alone.
    consent: { callers: ['payments'], handle: consentRoute },
  },
  async startWorkers(_env, _server, services) {
    services.auditLog.startPublisher();
    return async () => services.auditLog.stopPublisher();
  },
};
