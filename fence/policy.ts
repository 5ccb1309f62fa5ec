/**
 * The data-use policy, in one place: which subgraph is in which trust zone, how bank-sourced data
 * is marked, and which caller purpose may receive it. Every layer of the fence asks these
 * functions; nothing else in paygraph decides data use.
 */
import type { Purpose } from '../lib/auth.js';
import type { SubgraphName } from '../lib/config.js';

export type Zone = 'payments' | 'advertising';

/** Every subgraph and its zone. */
export const SUBGRAPH_ZONES: Readonly<Record<SubgraphName, Zone>> = Object.freeze({
  accounts: 'payments',
  payments: 'payments',
  merchants: 'payments',
  alerts: 'payments',
  ads: 'advertising',
});

/** The only purpose whose callers may receive payment-only data. */
const PAYMENT_PURPOSE: Purpose = 'payments';

/** paygraph's own spec for the @paymentOnly directive, imported with @link by each subgraph. */
export const PAYMENT_ONLY_SPEC_URL = 'https://paygraph.dev/data-use/v1.0';
export const PAYMENT_ONLY_DIRECTIVE = 'paymentOnly';

export function zoneOf(subgraph: string): Zone | undefined {
  return (SUBGRAPH_ZONES as Readonly<Record<string, Zone>>)[subgraph];
}

/** Subgraphs that must never receive payment-only data. An unknown subgraph counts as advertising. */
export function isAdvertisingZone(subgraph: string): boolean {
  return zoneOf(subgraph) !== 'payments';
}

/** Whether a caller with this purpose may receive payment-only data (all of it). */
export function mayReceivePaymentOnly(purpose: Purpose | null | undefined): boolean {
  return purpose === PAYMENT_PURPOSE;
}

/**
 * The `source` of the @paymentOnly marks that make up a bank's oversight view
 * (`@paymentOnly(source: "oversight")`: `Query.oversight` and its types).
 */
export const OVERSIGHT_SOURCE = 'oversight';

/**
 * Whether a caller may receive the payment-only coordinates an operation selects: a `payments`
 * caller all of them; a bank's `oversight` caller only its oversight view (each coordinate, or its
 * type, marked with source `oversight`), never a mask, balance, transaction or anything else; every
 * other caller none. `isOversight(coordinate)` says whether a coordinate is in the oversight view.
 */
export function mayReceive(purpose: Purpose | null | undefined, coordinates: readonly string[], isOversight: (coordinate: string) => boolean): boolean {
  if (coordinates.length === 0 || mayReceivePaymentOnly(purpose)) return true;
  return purpose === 'oversight' && coordinates.every(isOversight);
}
