/**
 * The error registry: every `extensions.code` paygraph puts on a GraphQL error, with its HTTP
 * status and whether its message is written for clients. It is the one list the gateway masks by
 * (an error whose code is not client-safe reaches the client as INTERNAL_SERVER_ERROR, its message
 * only in the log), so a new code is added here or it is masked.
 *
 * Business failures of mutations (`userErrors[].code`, the schema's UserErrorCode enum) are not
 * errors: they are data, listed in subgraphs/payments/schema.graphql.
 */
import { GraphQLError } from 'graphql';

interface ErrorSpec {
  /** HTTP status of a response refused with this error before execution (GraphQL over HTTP); 200: none of its own. */
  status: number;
  /** Whether the message is written for clients; otherwise it is replaced before it leaves the gateway. */
  clientSafe: boolean;
}

export const ERRORS = {
  // Requests
  BAD_REQUEST: { status: 400, clientSafe: true },
  BAD_USER_INPUT: { status: 400, clientSafe: true },
  GRAPHQL_PARSE_FAILED: { status: 400, clientSafe: true },
  GRAPHQL_VALIDATION_FAILED: { status: 400, clientSafe: true },
  OPERATION_RESOLUTION_FAILURE: { status: 400, clientSafe: true },
  PERSISTED_QUERY_NOT_FOUND: { status: 200, clientSafe: true },
  PERSISTED_QUERY_NOT_SUPPORTED: { status: 200, clientSafe: true },
  // Trusted documents (gateway/trusted-documents.ts): a document outside the manifest, in required mode
  OPERATION_NOT_TRUSTED: { status: 400, clientSafe: true },
  PAYLOAD_TOO_LARGE: { status: 413, clientSafe: true },
  METHOD_NOT_ALLOWED: { status: 405, clientSafe: true },
  // Request limits (gateway/limits.ts)
  QUERY_TOO_DEEP: { status: 400, clientSafe: true },
  TOO_MANY_ALIASES: { status: 400, clientSafe: true },
  QUERY_TOO_LARGE: { status: 400, clientSafe: true },
  TOO_MANY_DIRECTIVES: { status: 400, clientSafe: true },
  QUERY_TOO_COSTLY: { status: 400, clientSafe: true },
  RATE_LIMITED: { status: 429, clientSafe: true },
  TOO_MANY_SUBSCRIPTIONS: { status: 400, clientSafe: true },
  // A subscription's `after` cursor is past what can be replayed (subgraphs/alerts/replay.ts)
  CURSOR_EXPIRED: { status: 400, clientSafe: true },
  // Who is calling
  UNAUTHENTICATED: { status: 401, clientSafe: true },
  FORBIDDEN: { status: 403, clientSafe: true },
  // The data-use fence (fence/)
  FORBIDDEN_DATA_USE: { status: 403, clientSafe: true },
  AUDIT_UNAVAILABLE: { status: 503, clientSafe: true },
  // Consent (subgraphs/accounts/consent/): a field of an account without the user's active consent
  CONSENT_REQUIRED: { status: 200, clientSafe: true },
  // Data
  NOT_FOUND: { status: 200, clientSafe: true },
  // Faults (SUBGRAPH_UNAVAILABLE arises during execution, beside partial data: no status of its own)
  SUBGRAPH_UNAVAILABLE: { status: 200, clientSafe: true },
  INTERNAL_SERVER_ERROR: { status: 500, clientSafe: false },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Codes whose messages are written for clients (the gateway masks every other). */
const CLIENT_SAFE_CODES: ReadonlySet<string> = new Set((Object.keys(ERRORS) as ErrorCode[]).filter((c) => ERRORS[c].clientSafe));

export function isClientSafe(code: unknown): boolean {
  return typeof code === 'string' && CLIENT_SAFE_CODES.has(code);
}

/**
 * A GraphQL error with a registered code. `extensions` adds fields (e.g. `field`, `coordinates`);
 * the HTTP status is set from the registry only where it is not 200, as Apollo expects it.
 */
export function appError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}, cause?: Error): GraphQLError {
  const status = ERRORS[code].status;
  return new GraphQLError(message, {
    extensions: { code, ...extensions, ...(status !== 200 && !('http' in extensions) ? { http: { status } } : {}) },
    ...(cause ? { originalError: cause } : {}),
  });
}

export function badUserInput(message: string, field?: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...(field ? { field } : {}) } });
}

export function badRequest(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return appError('BAD_REQUEST', message, extensions);
}

export function notFound(message: string): GraphQLError {
  return appError('NOT_FOUND', message);
}

export function unauthenticated(message: string): GraphQLError {
  return appError('UNAUTHENTICATED', message);
}

/**
 * An error answered outside GraphQL execution (HTTP layer: body too large, unsigned internal
 * request, ...): a status, a message and a registered code.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: ErrorCode = 'BAD_REQUEST',
  ) {
    super(message);
  }
}

/**
 * A field of an account whose institution has no active consent of the user with the scope it
 * needs (subgraphs/accounts/consent/): the field is null, the rest of the operation answers.
 */
export function consentRequired(institutionId: string, scope: string, coordinate: string): GraphQLError {
  return appError('CONSENT_REQUIRED', `${coordinate} needs your active ${scope} consent for institution ${institutionId} (Mutation.grantConsent).`, {
    institutionId,
    scope,
  });
}

/**
 * A consent refusal that could not be audited, raised while executing a field (not before the
 * operation, so without AUDIT_UNAVAILABLE's HTTP status): the field is not answered (fail closed).
 */
export function consentAuditUnavailable(): GraphQLError {
  return new GraphQLError('Access to payment-only data could not be audited, so it was refused. Try again later.', {
    extensions: { code: 'AUDIT_UNAVAILABLE' },
  });
}
