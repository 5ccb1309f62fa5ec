/** The ads subgraph: sponsored offers from declared interests (advertising zone: no bank data, ever). */
import type { Knex } from 'knex';
import { loadSdl, type SubgraphDefinition } from '../../lib/subgraph.js';
import type { Fixture } from '../../seeds/fixture.js';
import { createLoaders, type AdsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

async function seed(db: Knex, f: Fixture): Promise<void> {
  await db.batchInsert('offers', f.offers.map((o) => ({ id: o.id, headline: o.headline, merchant_id: o.merchantId, topic: o.topic })), 200);
  await db.batchInsert('interests', f.users.flatMap((u) => u.interests.map((topic) => ({ user_id: u.id, topic }))), 200);
}

export const ads: SubgraphDefinition<AdsLoaders> = {
  name: 'ads',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  seed,
  seededTable: 'offers',
  createLoaders: (db) => createLoaders(db),
};
