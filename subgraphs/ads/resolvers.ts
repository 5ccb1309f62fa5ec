import type { SubgraphContext } from '../definition.js';
import type { OfferRow } from './data.js';
import type { AdsLoaders } from './loaders.js';

type Ctx = SubgraphContext<AdsLoaders>;

export const resolvers = {
  User: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
    /** Offers are personal: a caller sees offers for themself only. */
    sponsoredOffers: (user: { id: string }, _: unknown, ctx: Ctx) => (user.id === ctx.caller.userId ? ctx.loaders.offersOfUser.load(user.id) : []),
  },
  Offer: {
    merchant: (offer: OfferRow) => ({ __typename: 'Merchant', id: offer.merchantId }),
  },
};
