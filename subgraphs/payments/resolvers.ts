/**
 * The payments subgraph's resolvers: thin adapters from GraphQL to the service's collaborators
 * (ctx.services) and loaders. Who may see payment-only data is the fence's decision (layer 4, from
 * the schema's @paymentOnly marks), taken before any resolver runs; resolvers make sure the
 * caller is signed in where money moves, show each user their own rows only, and serve an
 * account's balance, history and movements only under the user's consent (consent.ts).
 */
import type { GraphQLResolveInfo } from 'graphql';
import { decodeCursor, encodeCursor, pageInfo, pageSize } from '../../lib/cursor.js';
import { notFound, unauthenticated } from '../../lib/errors.js';
import { money } from '../../lib/money.js';
import type { SubgraphContext } from '../definition.js';
import { movementConsentError, requireConsent, type ConsentCoordinate } from './consent.js';
import type { LedgerAccountRow, PostingRow, PurchaseRow, TransferRow } from './data.js';
import { balanceView } from './ledger/rules.js';
import type { PaymentsLoaders } from './loaders.js';
import type { MakePurchaseInput, SendTransferInput } from './movements/index.js';
import type { PaymentsServices } from './services.js';

type Ctx = SubgraphContext<PaymentsLoaders, PaymentsServices>;

/** The ledger account behind an Account reference, only for its owner. */
async function ownLedgerAccount(id: string, ctx: Ctx): Promise<LedgerAccountRow> {
  const row = ctx.caller.userId ? await ctx.loaders.ledgerAccount.load(id) : null;
  if (!row || row.ownerUserId !== ctx.caller.userId) throw notFound(`No account "${id}" for this user.`);
  return row;
}

/**
 * The caller's own ledger account, when the user's consent allows `coordinate` on it (the owner
 * check answers first: another user's account is NOT_FOUND, whatever its consents). The two reads
 * run side by side.
 */
async function consentedLedgerAccount(id: string, ctx: Ctx, info: GraphQLResolveInfo, coordinate: ConsentCoordinate): Promise<LedgerAccountRow> {
  const [own, consent] = await Promise.allSettled([
    ownLedgerAccount(id, ctx),
    ctx.caller.userId ? requireConsent(ctx, info, { accountId: id, coordinate }) : Promise.resolve(),
  ]);
  if (own.status === 'rejected') throw own.reason;
  if (consent.status === 'rejected') throw consent.reason;
  return own.value;
}

/** Account.balance: what can be spent and the balance (a card shows what is owed), as the ledger's rules have them. */
function balanceOf(account: LedgerAccountRow) {
  const asOf = new Date().toISOString();
  const { availableMinor, currentMinor } = balanceView(account);
  return { available: money(availableMinor, account.currency), current: money(currentMinor, account.currency), asOf };
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

/**
 * Mutations move the caller's own money: they need a signed-in user. (The caller's purpose was
 * checked by the fence already: the mutation fields are @paymentOnly.)
 */
function mover(ctx: Ctx, field: string): string {
  const userId = ctx.caller.userId;
  if (!userId) throw unauthenticated(`Sign in to use Mutation.${field}.`);
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
    sendTransfer: async (_: unknown, args: { input: SendTransferInput }, ctx: Ctx, info: GraphQLResolveInfo) => {
      const userId = mover(ctx, 'sendTransfer');
      const refused = await movementConsentError(ctx, info, args.input.fromAccountId, 'Mutation.sendTransfer', ['input', 'fromAccountId']);
      if (refused) return { transfer: null, userErrors: [refused] };
      const result = await ctx.services.movements.sendTransfer(userId, args.input);
      return { transfer: result.transferId ? await ctx.loaders.transfer.load(result.transferId) : null, userErrors: result.userErrors };
    },
    makePurchase: async (_: unknown, args: { input: MakePurchaseInput }, ctx: Ctx, info: GraphQLResolveInfo) => {
      const userId = mover(ctx, 'makePurchase');
      const refused = await movementConsentError(ctx, info, args.input.accountId, 'Mutation.makePurchase', ['input', 'accountId']);
      if (refused) return { purchase: null, userErrors: [refused] };
      const result = await ctx.services.movements.makePurchase(userId, args.input);
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
    balance: async (ref: { id: string }, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) =>
      balanceOf(await consentedLedgerAccount(ref.id, ctx, info, 'Account.balance')),
    transactions: async (ref: { id: string }, args: { first?: number | null; after?: string | null }, ctx: Ctx, info: GraphQLResolveInfo) => {
      const size = pageSize(args.first);
      const after = args.after ? decodeCursor(args.after) : null;
      await consentedLedgerAccount(ref.id, ctx, info, 'Account.transactions');
      const rows = await ctx.loaders.page.load({ accountId: ref.id, limit: size + 1, after });
      const page = rows.slice(0, size);
      const edges = page.map((p) => ({ cursor: encodeCursor({ at: p.postedAt, id: p.id }), node: transactionNode(p) }));
      return {
        accountId: ref.id,
        edges,
        pageInfo: pageInfo(edges, rows.length > size, args.after),
      };
    },
  },
  TransactionConnection: {
    totalCount: (conn: { accountId: string }, _: unknown, ctx: Ctx) => ctx.loaders.postingCount.load(conn.accountId),
  },
};
