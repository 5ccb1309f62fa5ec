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
  userId: string | null;
  purpose: Purpose | null;
  client: string | null;
  operationName: string | null;
  /** sha256 (hex) of the GraphQL document as the client sent it. */
  operationHash: string;
  /** Protected field coordinates the operation selected, e.g. `Account.mask`. */
  coordinates: string[];
  decision: DataAccessDecision;
  layer: string;
  requestId: string | null;
  /**
   * The institutions the record concerns, sorted ids (a consent's bank, an oversight caller's
   * bank); absent when it names none (subgraphs/accounts/consent/).
   */
  institutions?: string[];
}

/** What the accounts subgraph accepts as one record (and the bounds of each field). */
export const auditRecordSchema = z.object({
  at: z.iso.datetime(),
  userId: z.string().min(1).max(64).nullable(),
  purpose: z.enum(PURPOSES as [Purpose, ...Purpose[]]).nullable(),
  client: z.string().max(100).nullable(),
  operationName: z.string().max(200).nullable(),
  operationHash: z.string().regex(/^[0-9a-f]{64}$/),
  coordinates: z.array(z.string().min(1).max(200)).min(1).max(500),
  decision: z.enum(['ALLOWED', 'REFUSED']),
  layer: z.string().min(1).max(32),
  requestId: z.string().max(64).nullable(),
  institutions: z.array(z.string().min(1).max(64)).max(50).optional(),
});

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
}

export function auditRecord(d: Decision, now: Date = new Date()): DataAccessRecord {
  return {
    at: now.toISOString(),
    userId: d.caller.userId,
    purpose: d.caller.purpose,
    client: d.caller.client,
    operationName: d.operationName ?? null,
    operationHash: createHash('sha256').update(d.source).digest('hex'),
    coordinates: [...d.coordinates],
    decision: d.decision,
    layer: d.layer,
    requestId: d.requestId,
    ...(d.caller.institutionId ? { institutions: [d.caller.institutionId] } : {}),
  };
}
