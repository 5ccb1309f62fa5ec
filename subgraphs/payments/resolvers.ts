import { GraphQLError } from 'graphql';
import { decodeCursor, encodeCursor, pageSize } from '../../lib/cursor.js';
import { notFound, unauthenticated } from '../../lib/errors.js';
import { money } from '../../lib/money.js';
import type { SubgraphContext } from '../definition.js';
import type { LedgerAccountRow, PostingRow, PurchaseRow, TransferRow } from './data.js';
import type { PaymentsLoaders } from './loaders.js';
import { makePurchase, sendTransfer, type MakePurchaseInput, type SendTransferInput } from './movements.js';

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

/** Mutations move money: a signed-in caller with the payments purpose only. */
function mover(ctx: Ctx, field: string): string {
  const userId = ctx.caller.userId;
  if (!userId) throw unauthenticated(`Sign in to use Mutation.${field}.`);
  if (ctx.caller.purpose !== 'payments') {
    throw new GraphQLError(`Mutation.${field} is payment-only; this caller's purpose is "${ctx.caller.purpose ?? 'none'}".`, { extensions: { code: 'FORBIDDEN_DATA_USE', fields: [`Mutation.${field}`] } });
  }
  return userId;
}

/** A transfer, for its sender or recipient only. */
async function visibleTransfer(id: string, ctx: Ctx): Promise<TransferRow | null> {
  const me = ctx.caller.userId;
  if (!me || typeof id !== 'string') return null;
  const row = await ctx.loaders.transfer.load(id);
  return row && (row.fromUserId === me || row.toUserId === me) ? row : null;
}

/** A purchase, for its account's owner only. */
async function visiblePurchase(id: string, ctx: Ctx): Promise<PurchaseRow | null> {
  const me = ctx.caller.userId;
  if (!me || typeof id !== 'string') return null;
  const row = await ctx.loaders.purchase.load(id);
  return row && row.userId === me ? row : null;
}

export const resolvers = {
  Query: {
    transfer: (_: unknown, args: { id: string }, ctx: Ctx) => visibleTransfer(args.id, ctx),
    purchase: (_: unknown, args: { id: string }, ctx: Ctx) => visiblePurchase(args.id, ctx),
  },
  Mutation: {
    sendTransfer: async (_: unknown, args: { input: SendTransferInput }, ctx: Ctx) => {
      const result = await sendTransfer(ctx.db, mover(ctx, 'sendTransfer'), args.input);
      return { transfer: result.transferId ? await ctx.loaders.transfer.load(result.transferId) : null, userErrors: result.userErrors };
    },
    makePurchase: async (_: unknown, args: { input: MakePurchaseInput }, ctx: Ctx) => {
      const result = await makePurchase(ctx.db, mover(ctx, 'makePurchase'), args.input);
      return { purchase: result.purchaseId ? await ctx.loaders.purchase.load(result.purchaseId) : null, userErrors: result.userErrors };
    },
  },
  Transfer: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => visibleTransfer(ref.id, ctx),
    amount: (t: TransferRow) => money(t.amountMinor, t.currency),
    from: (t: TransferRow) => ({ id: t.fromAccountId }),
    recipient: (t: TransferRow) => ({ __typename: 'User', id: t.toUserId }),
  },
  Purchase: {
    __resolveReference: (ref: { id: string }, ctx: Ctx) => visiblePurchase(ref.id, ctx),
    amount: (p: PurchaseRow) => money(p.amountMinor, p.currency),
    merchant: (p: PurchaseRow) => ({ __typename: 'Merchant', id: p.merchantId }),
    account: (p: PurchaseRow) => ({ id: p.accountId }),
  },
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
