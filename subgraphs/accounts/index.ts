/** The accounts subgraph: users, institutions and linked accounts (payments zone). */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { auditRoute } from './audit.js';
import { consentRoute } from './consent/route.js';
import { createLoaders, type AccountsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

export const accounts: SubgraphDefinition<AccountsLoaders> = {
  name: 'accounts',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  createLoaders: (db) => createLoaders(db),
  // The gateway's data-access log appends (fence/audit-sink.ts), from the gateway alone.
  internalRoutes: {
    audit: { callers: ['gateway'], handle: auditRoute },
    // Consent decisions for the account data the payments subgraph owns (consent/route.ts), from payments alone.
    consent: { callers: ['payments'], handle: consentRoute },
  },
};
