import type { SubgraphContext } from '../../lib/subgraph.js';
import { notFound } from '../../lib/errors.js';
import type { AccountRow, UserRow } from './data.js';
import type { AccountsLoaders } from './loaders.js';

type Ctx = SubgraphContext<AccountsLoaders>;

/** An account is visible only to its owner. */
async function ownAccount(id: string, ctx: Ctx): Promise<AccountRow> {
  const row = ctx.caller.userId ? await ctx.loaders.account.load(id) : null;
  if (!row || row.userId !== ctx.caller.userId) throw notFound(`No account "${id}" for this user.`);
  return row;
}

export const resolvers = {
  Query: {
    me: (_: unknown, __: unknown, ctx: Ctx) => (ctx.caller.userId ? ctx.loaders.user.load(ctx.caller.userId) : null),
    account: (_: unknown, args: { id: string }, ctx: Ctx) => ownAccount(args.id, ctx),
  },
  User: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => ctx.loaders.user.load(ref.id),
    accounts: (user: UserRow, _: unknown, ctx: Ctx) => {
      if (user.id !== ctx.caller.userId) throw notFound(`Accounts of user "${user.handle}" are visible only to that user.`);
      return ctx.loaders.accountsOfUser.load(user.id);
    },
  },
  Account: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => ownAccount(ref.id, ctx),
    institution: (account: AccountRow, _: unknown, ctx: Ctx) => ctx.loaders.institution.load(account.institutionId),
  },
};
