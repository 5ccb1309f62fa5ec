/**
 * Fence layer 5: the accounts subgraph keeps the data-access log. The gateway appends one record per
 * operation touching payment-only data through the signed internal route POST /internal/audit
 * (lib/internal.ts); nothing ever updates or deletes a record (table triggers, migration 002).
 */
import { z } from 'zod';
import { HttpError } from '../../lib/http.js';
import type { InternalRoute } from '../../lib/subgraph.js';
import { appendDataAccess } from './data.js';

const record = z.object({
  at: z.iso.datetime(),
  userId: z.string().min(1).max(64).nullable(),
  purpose: z.enum(['payments', 'advertising']).nullable(),
  client: z.string().max(100).nullable(),
  operationName: z.string().max(200).nullable(),
  operationHash: z.string().regex(/^[0-9a-f]{64}$/),
  coordinates: z.array(z.string().min(1).max(200)).min(1).max(500),
  decision: z.enum(['ALLOWED', 'REFUSED']),
  layer: z.string().min(1).max(32),
  requestId: z.string().max(64).nullable(),
});

export const auditRoute: InternalRoute = async (env, body) => {
  const parsed = record.safeParse(body);
  if (!parsed.success) throw new HttpError(400, `audit record rejected: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const id = await appendDataAccess(env.db, parsed.data);
  return { id };
};
