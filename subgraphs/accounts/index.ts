/** The accounts subgraph: users, institutions and linked accounts (payments zone). */
import type { Knex } from 'knex';
import { loadSdl, type SubgraphDefinition } from '../../lib/subgraph.js';
import type { Fixture } from '../../seeds/fixture.js';
import { auditRoute } from './audit.js';
import { createLoaders, type AccountsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

async function seed(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert('institutions', f.institutions.map((i) => ({ id: i.id, name: i.name, kind: i.kind })), 200);
  await db.batchInsert('users', f.users.map((u) => ({ id: u.id, handle: u.handle, name: u.name, country: u.country })), 200);
  await db.batchInsert(
    'accounts',
    f.accounts.map((a) => ({ id: a.id, user_id: a.userId, institution_id: a.institutionId, kind: a.kind, display_name: a.displayName, mask: a.mask, currency: a.currency })),
    200,
  );
}

export const accounts: SubgraphDefinition<AccountsLoaders> = {
  name: 'accounts',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  seed,
  seededTable: 'users',
  createLoaders: (db) => createLoaders(db),
  internalRoutes: { audit: auditRoute },
};
