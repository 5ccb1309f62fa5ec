import { decodeCursor, encodeCursor, pageSize } from '../../lib/cursor.js';
import { notFound } from '../../lib/errors.js';
import { money } from '../../lib/money.js';
import type { SubgraphContext } from '../../lib/subgraph.js';
import type { LedgerAccountRow, PostingRow } from './data.js';
import type { PaymentsLoaders } from './loaders.js';

type Ctx = SubgraphContext<PaymentsLoaders>;

const CARD_KINDS = new Set(['CREDIT_CARD']);

/** The ledger account behind an Account reference, only for its owner. */
async function ownLedgerAccount(id: string, ctx: Ctx): Promise<LedgerAccountRow> {
  const row = ctx.caller.userId ? await ctx.loaders.ledgerAccount.load(id) : null;
  if (!row || row.ownerUserId !== ctx.caller.userId) throw notFound(`No account "${id}" for this user.`);
  return row;
}

export function balanceOf(account: LedgerAccountRow) {
  const asOf = new Date().toISOString();
  if (CARD_KINDS.has(account.kind)) {
    const owed = -account.balanceMinor;
    const limit = account.creditLimitMinor ?? 0n;
    return { available: money(limit - owed, account.currency), current: money(owed, account.currency), asOf };
  }
  return { available: money(account.balanceMinor, account.currency), current: money(account.balanceMinor, account.currency), asOf };
}

function transactionNode(p: PostingRow) {
  return {
    id: `txn_${p.id}`,
    kind: p.kind,
    direction: p.amountMinor < 0n ? 'DEBIT' : 'CREDIT',
    status: 'POSTED',
    amount: money(p.amountMinor < 0n ? -p.amountMinor : p.amountMinor, p.currency),
    description: p.description,
    postedAt: p.postedAt,
    merchant: p.merchantId ? { __typename: 'Merchant', id: p.merchantId } : null,
    counterparty: p.counterpartyUserId ? { __typename: 'User', id: p.counterpartyUserId } : null,
  };
}

export const resolvers = {
  Account: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
    balance: async (ref: { id: string }, _: unknown, ctx: Ctx) => balanceOf(await ownLedgerAccount(ref.id, ctx)),
    transactions: async (ref: { id: string }, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      const size = pageSize(args.first);
      const after = args.after ? decodeCursor(args.after) : null;
      await ownLedgerAccount(ref.id, ctx);
      const rows = await ctx.loaders.page.load({ accountId: ref.id, limit: size + 1, after });
      const page = rows.slice(0, size);
      const edges = page.map((p) => ({ cursor: encodeCursor({ at: p.postedAt, id: p.id }), node: transactionNode(p) }));
      return {
        accountId: ref.id,
        edges,
        pageInfo: { hasNextPage: rows.length > size, endCursor: edges.length ? edges[edges.length - 1]!.cursor : null },
      };
    },
  },
  TransactionConnection: {
    totalCount: (conn: { accountId: string }, _: unknown, ctx: Ctx) => ctx.loaders.postingCount.load(conn.accountId),
  },
};
