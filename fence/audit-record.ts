/**
 * Fence layer 5, the record: what the data-access log keeps of every decision about payment-only
 * data, allowed or refused. The gateway builds records; the accounts subgraph validates them with
 * the same schema (auditRecordSchema) and appends them; nothing updates or deletes one.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PURPOSES, type Caller, type Purpose } from '../lib/auth.js';

export type DataAccessDecision = 'ALLOWED' | 'REFUSED';

/** Which layer decided: the operation check at the gateway (either transport), or the plan check. */
export type FenceLayer = 'gateway' | 'subscription' | 'query-plan';

export interface DataAccessRecord {
  /** ISO-8601 UTC time of the decision. */
  at: string;
  /** The verified identity: the token's subject, purpose, issuer and credential client id (lib/auth.ts Caller). */
  userId: string | null;
  purpose: Purpose | null;
  /** Unset in records built before the issuer was kept (read as null). */
  issuer?: string | null;
  clientId?: string | null;
  /** The client name the caller sent (`apollographql-client-name`): as declared, never an identity. */
  client: string | null;
  operationName: string | null;
  /** sha256 (hex) of the GraphQL document as the client sent it. */
  operationHash: string;
  /** Protected field coordinates the operation selected, e.g. `Account.mask`. */
  coordinates: string[];
  decision: DataAccessDecision;
  layer: string;
  /** The request id the caller sent (or the gateway's own): as declared, never an identity. */
  requestId: string | null;
  /**
   * Ids of the institutions whose data the operation touched, when the sender knows them (e.g. a
   * consent check). Unset: the accounts subgraph computes them from the user's linked accounts.
   */
  institutions?: string[];
  /** How many identical refused attempts this record stands for (coalescing); unset: 1. */
  count?: number;
  /** Why a REFUSED record was refused: the code the caller got (e.g. FORBIDDEN_DATA_USE, RATE_LIMITED). */
  reason?: string | null;
}

/** The bounds of each field of a record (what the accounts subgraph keeps; longer values are truncated and marked). */
export const AUDIT_BOUNDS = {
  userId: 64,
  issuer: 200,
  clientId: 100,
  client: 100,
  operationName: 200,
  coordinate: 200,
  coordinates: 500,
  layer: 32,
  requestId: 64,
  reason: 64,
  institution: 64,
  institutions: 100,
  /** Most identical refused attempts one coalesced record may stand for. */
  count: 1_000_000_000,
} as const;

/** An ISO-8601 UTC time, as zod checks it: built once (a schema per record was most of the bounding's cost). */
const ISO_DATETIME = z.iso.datetime();

/** Lone UTF-16 surrogates (which no canonical JSON may hold) become U+FFFD. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** At most `max` UTF-16 units, never splitting a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return s.slice(0, end);
}

/**
 * One record as the accounts subgraph appends it, whatever it was sent: every field validated and
 * bounded on its own. A value too long is truncated, one of the wrong kind replaced (null, or for
 * the decision REFUSED, for the time the append's), and each such change named in `marks`
 * (`<field>:truncated`, `<field>:invalid`), so that one malformed record is kept, visibly, and
 * never makes a batch, or another caller's operation, fail.
 */
export function boundAuditRecord(input: unknown, now: Date = new Date()): { record: DataAccessRecord; marks: string[] } {
  const marks = new Set<string>();
  const r = (typeof input === 'object' && input !== null && !Array.isArray(input) ? input : {}) as Record<string, unknown>;
  if (r !== input) marks.add('record:invalid');
  const text = (field: string, max: number, opts: { empty?: boolean; truncate?: boolean } = {}): string | null => {
    const v = r[field];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'string' || (v.length === 0 && !opts.empty)) return (marks.add(`${field}:invalid`), null);
    const clean = wellFormed(v);
    if (clean !== v) marks.add(`${field}:invalid`);
    if (clean.length <= max) return clean;
    // A value that identifies someone is never shortened into another value: replaced instead.
    if (opts.truncate === false) return (marks.add(`${field}:invalid`), null);
    marks.add(`${field}:truncated`);
    return cut(clean, max);
  };
  const at = typeof r.at === 'string' && ISO_DATETIME.safeParse(r.at).success ? r.at : (marks.add('at:invalid'), now.toISOString());
  const purpose =
    r.purpose === null || r.purpose === undefined
      ? null
      : PURPOSES.includes(r.purpose as Purpose)
        ? (r.purpose as Purpose)
        : (marks.add('purpose:invalid'), null);
  const hash =
    typeof r.operationHash === 'string' && /^[0-9a-f]{64}$/.test(r.operationHash) ? r.operationHash : (marks.add('operationHash:invalid'), '0'.repeat(64));
  const list = (field: string, max: number, each: number): string[] | undefined => {
    const v = r[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return (marks.add(`${field}:invalid`), []);
    const items = v.filter((c): c is string => typeof c === 'string' && c.length > 0);
    if (items.length !== v.length) marks.add(`${field}:invalid`);
    if (items.length > max) marks.add(`${field}:truncated`);
    const bounded = items.slice(0, max).map((c) => {
      const clean = wellFormed(c);
      if (clean.length > each) marks.add(`${field}:truncated`);
      return cut(clean, each);
    });
    return [...new Set(bounded)].sort();
  };
  let coordinates = list('coordinates', AUDIT_BOUNDS.coordinates, AUDIT_BOUNDS.coordinate) ?? (marks.add('coordinates:invalid'), []);
  if (coordinates.length === 0) coordinates = ['(unknown)'];
  const decision = r.decision === 'ALLOWED' || r.decision === 'REFUSED' ? r.decision : (marks.add('decision:invalid'), 'REFUSED');
  const count =
    r.count === undefined
      ? 1
      : Number.isSafeInteger(r.count) && (r.count as number) >= 1 && (r.count as number) <= AUDIT_BOUNDS.count
        ? (r.count as number)
        : (marks.add('count:invalid'), 1);
  const institutions = list('institutions', AUDIT_BOUNDS.institutions, AUDIT_BOUNDS.institution);
  const record: DataAccessRecord = {
    at,
    userId: text('userId', AUDIT_BOUNDS.userId, { truncate: false }),
    purpose,
    issuer: text('issuer', AUDIT_BOUNDS.issuer, { truncate: false }),
    clientId: text('clientId', AUDIT_BOUNDS.clientId, { truncate: false }),
    client: text('client', AUDIT_BOUNDS.client, { empty: true }),
    operationName: text('operationName', AUDIT_BOUNDS.operationName, { empty: true }),
    operationHash: hash,
    coordinates,
    decision,
    layer: text('layer', AUDIT_BOUNDS.layer) ?? (marks.add('layer:invalid'), 'unknown'),
    requestId: text('requestId', AUDIT_BOUNDS.requestId, { empty: true }),
    ...(institutions !== undefined ? { institutions } : {}),
    ...(r.reason !== undefined && r.reason !== null ? { reason: text('reason', AUDIT_BOUNDS.reason) } : {}),
    ...(count !== 1 ? { count } : {}),
  };
  return { record, marks: [...marks].sort() };
}

/** One decision, as the fence saw it. */
export interface Decision {
  caller: Caller;
  operationName: string | null | undefined;
  /** The document's text as the client sent it. */
  source: string;
  coordinates: readonly string[];
  decision: DataAccessDecision;
  layer: FenceLayer;
  requestId: string | null;
  /** The refusal's code, for a REFUSED decision. */
  reason?: string | null;
}

export function auditRecord(d: Decision, now: Date = new Date()): DataAccessRecord {
  return {
    at: now.toISOString(),
    userId: d.caller.userId,
    purpose: d.caller.purpose,
    issuer: d.caller.issuer ?? null,
    clientId: d.caller.clientId ?? null,
    client: d.caller.client,
    operationName: d.operationName ?? null,
    operationHash: createHash('sha256').update(d.source).digest('hex'),
    coordinates: [...d.coordinates],
    decision: d.decision,
    layer: d.layer,
    requestId: d.requestId,
    ...(d.reason ? { reason: d.reason } : {}),
    ...(d.caller.institutionId ? { institutions: [d.caller.institutionId] } : {}),
  };
}
