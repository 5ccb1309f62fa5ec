/**
 * Fence layer 5: the accounts subgraph keeps the data-access log. The gateway appends records for
 * every operation touching payment-only data through the signed internal route POST /internal/audit
 * (lib/transport/internal-client.ts); nothing ever updates or deletes a record (table triggers, migration 002).
 *
 * The body is one record, or `{ records: [...] }`: the gateway groups the records that arrive
 * while its previous append is in flight (group commit, fence/audit-sink.ts batchingAuditSink). A
 * batch is validated as a whole (one bad record refuses all of it) and written with one INSERT,
 * so it commits entirely or not at all; the answer (200 with the ids, in order) is sent only
 * after the commit, and the gateway lets none of those operations run before it.
 */
import { z } from 'zod';
import { auditRecordSchema as record } from '../../fence/audit-record.js';
import { HttpError } from '../../lib/errors.js';
import type { InternalRoute } from '../definition.js';
import { appendDataAccessBatch } from './data.js';

/** Most records one append may carry (the gateway sends at most fence/audit-sink.ts AUDIT_MAX_BATCH = 200). */
export const MAX_AUDIT_BATCH = 500;

const batch = z.object({ records: z.array(record).min(1).max(MAX_AUDIT_BATCH) });

export const auditRoute: InternalRoute = async (env, body) => {
  const many = typeof body === 'object' && body !== null && 'records' in body;
  const parsed = many ? batch.safeParse(body) : record.transform((r) => ({ records: [r] })).safeParse(body);
  if (!parsed.success) throw new HttpError(400, `audit record rejected: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const ids = await appendDataAccessBatch(env.db, parsed.data.records);
  return many ? { ids } : { id: ids[0], ids };
};
