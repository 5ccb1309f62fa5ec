import type { SubgraphContext } from '../definition.js';
import { decodeCursor, encodeCursor, pageInfo, pageSize } from '../../lib/cursor.js';
import { badUserInput, notFound } from '../../lib/errors.js';
import { ParameterError } from './audit-log.js';
import type { AccountsServices } from './audit.js';
import { countDataAccessOfUser, dataAccessOfUser, type AccountRow, type DataAccessRow, type UserRow } from './data.js';
import { consentResolvers } from './consent/resolvers.js';
import { oversightResolvers } from './consent/oversight.js';
import type { AccountsLoaders } from './loaders.js';

type Ctx = SubgraphContext<AccountsLoaders, AccountsServices>;

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
    ...consentResolvers.Query,
    ...oversightResolvers.Query,
  },
  Mutation: consentResolvers.Mutation,
  User: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => ctx.loaders.user.load(ref.id),
    accounts: (user: UserRow, _: unknown, ctx: Ctx) => {
      if (user.id !== ctx.caller.userId) throw notFound(`Accounts of user "${user.handle}" are visible only to that user.`);
      return ctx.loaders.accountsOfUser.load(user.id);
    },
    /** Fence layer 5: the user's own data-access log, newest first (a Relay connection). */
    dataAccessLog: async (user: UserRow, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      if (user.id !== ctx.caller.userId) throw notFound(`The data-access log of user "${user.handle}" is visible only to that user.`);
      const size = pageSize(args.first);
      const afterId = args.after ? decodeCursor(args.after).id : null;
      const [rows, totalCount] = await Promise.all([dataAccessOfUser(ctx.db, user.id, size + 1, afterId), countDataAccessOfUser(ctx.db, user.id)]);
      const page = rows.slice(0, size);
      const edges = page.map((r: DataAccessRow) => ({ cursor: encodeCursor({ at: r.at, id: r.id }), node: r }));
      return { totalCount, edges, pageInfo: pageInfo(edges, rows.length > size, args.after) };
    },
    ...consentResolvers.User,
  },
  DataAccessRecord: {
    id: (r: DataAccessRow) => String(r.id),
    reason: (r: DataAccessRow) => (JSON.parse(r.leaf) as { reason?: string | null }).reason ?? null,
    /** Proven from the stored tree (O(log n) reads); the leaf hash is the stored one, which the app checks against `leaf`. */
    inclusionProof: async (r: DataAccessRow, args: { treeSize?: number | null }, ctx: Ctx) => {
      const log = ctx.services.auditLog;
      try {
        const size = args.treeSize ?? (await log.treeSize());
        if (Number.isSafeInteger(size) && size >= 1 && r.leafIndex >= size) return null;
        const p = await log.inclusion(r.leafIndex, size);
        return { leafIndex: p.index, treeSize: p.treeSize, leafHash: p.leafHash, hashes: p.hashes };
      } catch (err) {
        if (err instanceof ParameterError) throw badUserInput(`inclusionProof: ${err.message}`, 'treeSize');
        throw err;
      }
    },
  },
  Account: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => ownAccount(ref.id, ctx),
    institution: (account: AccountRow, _: unknown, ctx: Ctx) => ctx.loaders.institution.load(account.institutionId),
    // mask, displayName: only under the user's active ACCOUNT_DETAILS consent (consent/).
    ...consentResolvers.Account,
  },
  Consent: consentResolvers.Consent,
  Oversight: oversightResolvers.Oversight,
  OversightConsent: oversightResolvers.OversightConsent,
  OversightAccessRecord: oversightResolvers.OversightAccessRecord,
};
