import DataLoader from 'dataloader';
import type { Knex } from 'knex';
import { groupByKey } from '../../lib/loaders.js';
import * as data from './data.js';

export function createLoaders(db: Knex) {
  return {
    offersOfUser: new DataLoader<string, data.OfferRow[]>(async (ids) => groupByKey(ids, await data.offersForUsers(db, ids), (r) => r.userId)),
  };
}
export type AdsLoaders = ReturnType<typeof createLoaders>;
