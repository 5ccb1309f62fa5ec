/** The ads subgraph: sponsored offers from declared interests (advertising zone: no bank data, ever). */
import { loadSdl, type SubgraphDefinition } from '../definition.js';
import { createLoaders, type AdsLoaders } from './loaders.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';

export const ads: SubgraphDefinition<AdsLoaders> = {
  name: 'ads',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  createLoaders: (db) => createLoaders(db),
};
