/**
 * What a planned movement books when the ledger accepts it: its balanced journal entry (who pays
 * whom: minus on the source, plus on the recipient's or merchant's account), its outbox event for
 * the alerts service, and its business record row. Pure builders; amounts stay bigint in the
 * entry and decimal strings in rows and events.
 */
import { randomUUID } from 'node:crypto';
import type { NewEntry, NewOutboxEvent, SettlementView } from '../ledger/index.js';
import type { PurchaseRequest, TransferRequest } from './types.js';

/** A transfer that passed the checks independent of balances: from the caller's account to the recipient's. */
export interface TransferPlan {
  kind: 'transfer';
  fromAccountId: string;
  toAccountId: string;
  toUserId: string;
}

/** A purchase that passed the checks independent of balances: from the caller's account to the merchant's settlement account. */
export interface PurchasePlan {
  kind: 'purchase';
  accountId: string;
  accountKind: string;
  settle: SettlementView;
  /** The purchaser's country (parties), for the fraud rules. */
  country: string | null;
}

export interface Booking {
  /** The transfer or purchase id. */
  id: string;
  entry: NewEntry;
  event: NewOutboxEvent;
  row: Record<string, unknown>;
}

export function transferBooking(t: TransferRequest, plan: TransferPlan): Booking {
  const { minor, currency } = t.amount;
  const id = `trf_${randomUUID()}`;
  const entryId = `je_${randomUUID()}`;
  return {
    id,
    entry: {
      id: entryId,
      kind: 'TRANSFER',
      description: t.note ?? 'Transfer',
      postedAt: t.postedAt,
      postings: [
        { accountId: plan.fromAccountId, amountMinor: -minor, currency, counterpartyUserId: plan.toUserId },
        { accountId: plan.toAccountId, amountMinor: minor, currency, counterpartyUserId: t.userId },
      ],
    },
    event: {
      type: 'TRANSFER_POSTED',
      payload: {
        transferId: id,
        fromAccountId: plan.fromAccountId,
        fromUserId: t.userId,
        toUserId: plan.toUserId,
        amountMinor: minor.toString(),
        currency,
        postedAt: t.postedAt,
      },
      createdAt: t.postedAt,
      traceparent: t.traceparent ?? null,
    },
    row: {
      id,
      entry_id: entryId,
      from_account_id: plan.fromAccountId,
      from_user_id: t.userId,
      to_account_id: plan.toAccountId,
      to_user_id: plan.toUserId,
      amount_minor: minor.toString(),
      currency,
      note: t.note,
      status: 'POSTED',
      created_at: t.postedAt,
    },
  };
}

export function purchaseBooking(p: PurchaseRequest, plan: PurchasePlan): Booking {
  const { minor, currency } = p.amount;
  const id = `pur_${randomUUID()}`;
  const entryId = `je_${randomUUID()}`;
  return {
    id,
    entry: {
      id: entryId,
      kind: 'PURCHASE',
      description: p.description ?? plan.settle.merchantName ?? p.merchantId,
      postedAt: p.postedAt,
      postings: [
        { accountId: plan.accountId, amountMinor: -minor, currency, merchantId: p.merchantId },
        { accountId: plan.settle.id, amountMinor: minor, currency, merchantId: p.merchantId },
      ],
    },
    event: {
      type: 'PURCHASE_POSTED',
      payload: {
        purchaseId: id,
        accountId: plan.accountId,
        accountKind: plan.accountKind,
        userId: p.userId,
        userCountry: plan.country,
        merchantId: p.merchantId,
        merchantCategory: plan.settle.merchantCategory,
        merchantCountry: plan.settle.merchantCountry,
        mcc: plan.settle.merchantMcc,
        amountMinor: minor.toString(),
        currency,
        postedAt: p.postedAt,
        cardPresent: p.cardPresent,
      },
      createdAt: p.postedAt,
      traceparent: p.traceparent ?? null,
    },
    row: {
      id,
      entry_id: entryId,
      account_id: plan.accountId,
      user_id: p.userId,
      merchant_id: p.merchantId,
      amount_minor: minor.toString(),
      currency,
      description: p.description,
      card_present: p.cardPresent,
      status: 'POSTED',
      created_at: p.postedAt,
    },
  };
}
