/**
 * Fence layer 5: the accounts subgraph keeps the data-access log, a transparency log
 * (docs/audit.md). The gateway appends records for every operation touching payment-only data
 * through the signed internal route POST /internal/audit (lib/transport/internal-client.ts);
 * nothing ever updates or deletes a record (table triggers, migrations 002 and 003), and the
 * signed checkpoints make any change after the fact evident to whoever keeps one.
 *
 * The body is one record, or `{ records: [...] }`: the gateway groups the records that arrive
 * while its previous append is in flight (group commit, fence/audit-sink.ts batchingAuditSink).
 * Each record is validated and bounded on its own (fence/audit-record.ts boundAuditRecord:
 * truncated and marked, never refused), so one caller's malformed input never fails the batch
 * that carries other callers' records. The batch is written in one transaction (rows, leaves,
 * tree nodes), so it commits entirely or not at all; the answer (200 with the ids, in order) is
 * sent only after the commit, and the gateway lets none of those operations run before it.
 *
 * The read routes (auditCheckpoint, auditKey, auditInclusion, auditConsistency, auditEntries)
 * are what the gateway's public /audit/* endpoints relay (gateway/audit-routes.ts); a bad
 * parameter is answered `{ error: { parameter, message } }` for the gateway to turn into a 400.
 */
import { boundAuditRecord } from '../../fence/audit-record.js';
import { HttpError } from '../../lib/errors.js';
import type { InternalEndpoint, InternalRoute } from '../definition.js';
import { ParameterError, type AuditLog } from './audit-log.js';
import { appendDataAccessBatch } from './data.js';

/** Most records one append may carry (the gateway sends at most fence/audit-sink.ts AUDIT_MAX_BATCH = 200). */
export const MAX_AUDIT_BATCH = 500;

export interface AccountsServices {
  auditLog: AuditLog;
}

export const auditRoute: InternalRoute<AccountsServices> = async (env, body, _requestId, services) => {
  const many = typeof body === 'object' && body !== null && 'records' in body;
  const list = many ? (body as { records: unknown }).records : [body];
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_AUDIT_BATCH)
    throw new HttpError(400, `audit append rejected: records must be a list of 1 to ${MAX_AUDIT_BATCH} records`);
  const now = new Date();
  const bounded = list.map((r) => boundAuditRecord(r, now));
  for (const [i, b] of bounded.entries())
    if (b.marks.length)
      env.logger.warn({ audit: { position: i, marks: b.marks, requestId: b.record.requestId } }, 'audit record bounded (truncated or replaced fields)');
  const logged = await appendDataAccessBatch(env.db, bounded, services.auditLog.head);
  services.auditLog.appended();
  const ids = logged.map((l) => l.id);
  const leafIndexes = logged.map((l) => l.leafIndex);
  return many ? { ids, leafIndexes } : { id: ids[0], ids, leafIndexes };
};

/** A non-negative integer parameter of a read route (the gateway parsed it; checked again here). */
function nat(body: unknown, name: string): number {
  const v = (body as Record<string, unknown> | null)?.[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ParameterError(name, `${name} must be a non-negative integer`);
  return v;
}

function reading(fn: (log: AuditLog, body: unknown) => Promise<unknown>): InternalEndpoint<AccountsServices> {
  return {
    callers: ['gateway'],
    handle: async (_env, body, _requestId, services) => {
      try {
        return await fn(services.auditLog, body);
      } catch (err) {
        if (err instanceof ParameterError) return { error: { parameter: err.parameter, message: err.message } };
        throw err;
      }
    },
  };
}

/** The public log's read routes, relayed by the gateway (gateway/audit-routes.ts). */
export const auditReadRoutes: Record<string, InternalEndpoint<AccountsServices>> = {
  auditCheckpoint: reading(async (log) => ({ checkpoint: await log.checkpoint() })),
  auditKey: reading(async (log) => Promise.resolve({ key: log.vkey, origin: log.origin })),
  auditInclusion: reading((log, body) => log.inclusion(nat(body, 'index'), nat(body, 'size'))),
  auditConsistency: reading((log, body) => log.consistency(nat(body, 'from'), nat(body, 'to'))),
  auditEntries: reading((log, body) => log.entries(nat(body, 'start'), nat(body, 'end'))),
};
