import type { SubgraphContext } from '../../lib/subgraph.js';
import { alertsOfUser, type ChargeAlertRow } from './data.js';
import type { AlertsLoaders } from './loaders.js';

type Ctx = SubgraphContext<AlertsLoaders>;

export const resolvers = {
  Query: {
    chargeAlerts: (_: unknown, __: unknown, ctx: Ctx) => (ctx.caller.userId ? alertsOfUser(ctx.db, ctx.caller.userId) : []),
  },
  ChargeAlert: {
    __resolveReference: async (ref: { id: string }, ctx: Ctx) => {
      const row = await ctx.loaders.alert.load(ref.id);
      return row && row.userId === ctx.caller.userId ? row : null;
    },
    account: (alert: ChargeAlertRow) => ({ __typename: 'Account', id: alert.accountId }),
  },
};
