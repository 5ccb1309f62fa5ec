/** The merchants subgraph: the public merchant directory (payments zone, no bank data). */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { createLoaders, type MerchantsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

export const merchants: SubgraphDefinition<MerchantsLoaders> = {
  name: 'merchants',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  createLoaders: (db) => createLoaders(db),
};
