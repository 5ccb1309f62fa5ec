import { pageSize } from '../../lib/cursor.js';
import { notFound } from '../../lib/errors.js';
import type { SubgraphContext } from '../definition.js';
import { listMerchants } from './data.js';
import type { MerchantsLoaders } from './loaders.js';

type Ctx = SubgraphContext<MerchantsLoaders>;

export const resolvers = {
  Query: {
    merchants: (_: unknown, args: { first?: number | null }, ctx: Ctx) => listMerchants(ctx.db, pageSize(args.first)),
    merchant: async (_: unknown, args: { id: string }, ctx: Ctx) => {
      const row = await ctx.loaders.merchant.load(args.id);
      if (!row) throw notFound(`No merchant "${args.id}".`);
      return row;
    },
  },
  Merchant: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => ctx.loaders.merchant.load(ref.id),
  },
};
