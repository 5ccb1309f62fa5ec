/**
 * What a caller sees when the fence says no. Every refusal carries the registered code
 * FORBIDDEN_DATA_USE (or AUDIT_UNAVAILABLE when the decision could not be recorded), the fence
 * layer that refused, and the protected coordinates involved, on either transport.
 */
import type { GraphQLError } from 'graphql';
import { appError } from '../lib/errors.js';

/** The error a refused caller gets: it names every protected coordinate selected. */
export function forbiddenDataUse(coordinates: readonly string[], where = 'gateway'): GraphQLError {
  return appError(
    'FORBIDDEN_DATA_USE',
    `Forbidden data use: ${coordinates.join(', ')} ${coordinates.length === 1 ? 'is' : 'are'} payment-only bank data and may be selected only by a caller whose purpose is "payments".`,
    { coordinates: [...coordinates], fence: where },
  );
}

/**
 * An operation that reaches an advertising field through a payment-only one: refused to every
 * caller, payments included, since even a legitimate payments app must not make the gateway tell
 * the advertising zone whom its user pays.
 */
export function adThroughProtected(paths: readonly string[]): GraphQLError {
  return appError(
    'FORBIDDEN_DATA_USE',
    `Forbidden data use: ${paths.join(', ')} would send payment-derived ids to the advertising zone; advertising fields cannot be selected under payment-only data, whoever asks.`,
    { paths: [...paths], fence: 'gateway' },
  );
}

/** A query plan that would send payment-only data to the advertising zone (the supergraph is wrong). */
export function planAborted(coordinates: readonly string[]): GraphQLError {
  return appError(
    'FORBIDDEN_DATA_USE',
    'The data-use fence aborted this request: its query plan would send payment-only data to an advertising-zone subgraph.',
    {
      fence: 'query-plan',
      coordinates: [...coordinates],
    },
  );
}

/** The decision to allow could not be recorded, so nothing runs (fail closed). */
export function auditUnavailable(): GraphQLError {
  return appError('AUDIT_UNAVAILABLE', 'Access to payment-only data could not be audited, so it was refused. Try again later.');
}

/** An unauthenticated client whose refused attempts exceed their budget (fence/refusal-guard.ts). */
export function refusedAttemptsLimited(): GraphQLError {
  return appError('RATE_LIMITED', 'Too many refused attempts from this address; retry later.', {
    retryAfterSeconds: 10,
    http: { status: 429, headers: new Map([['retry-after', '10']]) },
  });
}
