/** Data access for the merchants subgraph. */
import type { Knex } from 'knex';

/** Merchant categories of the directory (the schema's MerchantCategory). */
export type MerchantCategory =
  'GROCERIES' | 'RESTAURANTS' | 'TRANSPORT' | 'TRAVEL' | 'ENTERTAINMENT' | 'SHOPPING' | 'ELECTRONICS' | 'APPAREL' | 'FUEL' | 'UTILITIES';

export interface MerchantRow {
  id: string;
  name: string;
  category: MerchantCategory;
  mcc: string;
  country: string;
  city: string;
}

const columns = ['id', 'name', 'category', 'mcc', 'country', 'city'];

export function merchantsByIds(db: Knex, ids: readonly string[]): Promise<MerchantRow[]> {
  return db('merchants').select(columns).whereIn('id', ids);
}

export function listMerchants(db: Knex, first: number): Promise<MerchantRow[]> {
  return db('merchants')
    .select(columns)
    .orderBy([{ column: 'name' }, { column: 'id' }])
    .limit(first);
}
