/**
 * The data-use policy: the single place that says which subgraph is in which trust zone,
 * which caller purposes exist, and how bank-sourced data is marked.
 */
import type { Purpose } from '../lib/auth.js';
import type { SubgraphName } from '../lib/config.js';

export type Zone = 'payments' | 'advertising';

/** The subgraph registry: every subgraph and its zone. */
export const SUBGRAPH_ZONES: Readonly<Record<SubgraphName, Zone>> = Object.freeze({
  accounts: 'payments',
  payments: 'payments',
  merchants: 'payments',
  alerts: 'payments',
  ads: 'advertising',
});

/** The purpose a caller needs to receive payment-only data. */
export const PAYMENT_PURPOSE: Purpose = 'payments';

/** paygraph's own spec for the @paymentOnly directive, imported with @link by each subgraph. */
export const PAYMENT_ONLY_SPEC_URL = 'https://paygraph.dev/data-use/v1.0';
export const PAYMENT_ONLY_DIRECTIVE = 'paymentOnly';

/** `extensions.code` of the error a caller gets when the fence refuses an operation. */
export const FORBIDDEN_DATA_USE = 'FORBIDDEN_DATA_USE';

export function zoneOf(subgraph: string): Zone | undefined {
  return (SUBGRAPH_ZONES as Readonly<Record<string, Zone>>)[subgraph];
}

/** Subgraphs that must never receive payment-only data. An unknown subgraph counts as advertising. */
export function isAdvertisingZone(subgraph: string): boolean {
  return zoneOf(subgraph) !== 'payments';
}

/** Whether a caller with this purpose may receive payment-only data. */
export function mayReceivePaymentOnly(purpose: Purpose | null | undefined): boolean {
  return purpose === PAYMENT_PURPOSE;
}

/** Decisions recorded in the data-access log. */
export type DataAccessDecision = 'ALLOWED' | 'REFUSED';

/**
 * One data-access log record (fence layer 5), as the gateway sends it to the accounts subgraph's
 * internal `audit` route. Records are appended, never updated or deleted.
 */
export interface DataAccessRecord {
  /** ISO-8601 UTC time of the decision. */
  at: string;
  userId: string | null;
  purpose: Purpose | null;
  client: string | null;
  operationName: string | null;
  /** sha256 (hex) of the GraphQL document as the client sent it. */
  operationHash: string;
  /** Protected field coordinates the operation selected, e.g. `Account.mask`. */
  coordinates: string[];
  decision: DataAccessDecision;
  /** Which fence layer decided, e.g. `gateway` or `subscription`. */
  layer: string;
  requestId: string | null;
}
