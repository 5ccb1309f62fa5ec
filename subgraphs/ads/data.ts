/** Data access for the ads subgraph: declared interests and offers, no financial data. */
import type { Knex } from 'knex';

export interface OfferRow {
  id: string;
  headline: string;
  merchantId: string;
  topic: string;
  userId: string;
}

/** Offers matching each user's interests, for many users in one query. */
export function offersForUsers(db: Knex, userIds: readonly string[]): Promise<OfferRow[]> {
  return db('interests as i')
    .join('offers as o', 'o.topic', 'i.topic')
    .select('o.id', 'o.headline', 'o.merchant_id as merchantId', 'o.topic', 'i.user_id as userId')
    .whereIn('i.user_id', userIds)
    .orderBy([{ column: 'i.user_id' }, { column: 'o.id' }]);
}
