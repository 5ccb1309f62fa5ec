/** The merchants subgraph: the public merchant directory (payments zone, no bank data). */
import type { Knex } from 'knex';
import { loadSdl, type SubgraphDefinition } from '../../lib/subgraph.js';
import type { Fixture } from '../../seeds/fixture.js';
import { createLoaders, type MerchantsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

async function seed(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert('merchants', f.merchants.map((m) => ({ id: m.id, name: m.name, category: m.category, mcc: m.mcc, country: m.country, city: m.city })), 200);
}

export const merchants: SubgraphDefinition<MerchantsLoaders> = {
  name: 'merchants',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  seed,
  seededTable: 'merchants',
  createLoaders: (db) => createLoaders(db),
};
