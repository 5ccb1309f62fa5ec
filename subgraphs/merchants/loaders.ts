import DataLoader from 'dataloader';
import type { Knex } from 'knex';
import { byKey } from '../../lib/loaders.js';
import * as data from './data.js';

export function createLoaders(db: Knex) {
  return {
    merchant: new DataLoader<string, data.MerchantRow | null>(async (ids) => byKey(ids, await data.merchantsByIds(db, ids), (r) => r.id)),
  };
}
export type MerchantsLoaders = ReturnType<typeof createLoaders>;
