/**
 * The data-use policy: the single place that says which subgraph is in which trust zone,
 * which caller purposes exist, and how bank-sourced data is marked.
 */
import type { SubgraphName } from './config.js';

export type Purpose = 'payments' | 'advertising';
export const PURPOSES: readonly Purpose[] = ['payments', 'advertising'];
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

export function isPurpose(value: unknown): value is Purpose {
  return value === 'payments' || value === 'advertising';
}
