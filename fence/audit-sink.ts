/**
 * Fence layer 5, the sink: how the gateway appends decisions to the data-access log kept by the
 * accounts subgraph (POST /internal/audit, signed with the gateway's own key). A sink resolves
 * only once the record is committed, and the fence lets nothing run before that (fail closed).
 */
import { callInternal } from '../lib/transport/internal-client.js';
import type { Signer } from '../lib/transport/keys.js';
import type { DataAccessRecord } from './audit-record.js';

/** Appends one record to the data-access log; resolves once it is committed, rejects when it could not be. */
export type AuditSink = (record: DataAccessRecord) => Promise<void>;

/** Most records one audit append carries (one multi-row INSERT: 10 columns each, well under SQLite's and PostgreSQL's bind limits). */
export const AUDIT_MAX_BATCH = 200;

/**
 * Group commit for the audit log. Each record's promise settles only when the append that carries
 * it has committed (or failed), and the operation waits for it exactly as unbatched: nothing
 * executes, and nothing is answered, before its record is durable. Records go in arrival order,
 * at most `maxBatch` per append (one HTTP call, one INSERT, one transaction), one append at a
 * time: an append starts right after the event-loop turn in which a record arrived (records of
 * the other requests handled in that turn join it), and records that arrive while it is in flight
 * go together in the next one. At low load every record goes alone, with no added wait; under
 * load the appends per second stay bounded by one round trip while the records per append grow.
 * A failed append rejects every record it carried (each of those operations is refused: fail
 * closed) and does not affect the next one.
 */
export function batchingAuditSink(append: (records: DataAccessRecord[]) => Promise<void>, maxBatch = AUDIT_MAX_BATCH): AuditSink {
  let queue: { record: DataAccessRecord; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let busy = false;
  const drain = async () => {
    try {
      while (queue.length > 0) {
        const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
        queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
        try {
          await append(batch.map((b) => b.record));
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      busy = false;
    }
  };
  return (record) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ record, resolve, reject });
      if (busy) return; // the scheduled or running drain takes it
      busy = true;
      setImmediate(() => void drain());
    });
}

/**
 * One append of several records to the accounts subgraph's log, resolving once they are committed
 * (the route answers with one id per record, after its transaction). `accountsUrls` may list
 * several accounts processes (internal-client.ts fails over on a refused connection).
 */
function internalAuditAppend(accountsUrls: string, gateway: Signer): (records: DataAccessRecord[]) => Promise<void> {
  return async (records) => {
    const requestId = records.length === 1 ? records[0]!.requestId : null;
    const { ids } = await callInternal<{ ids?: unknown }>(gateway, 'accounts', accountsUrls, 'audit', { records }, { requestId, timeoutMs: 5_000 });
    if (!Array.isArray(ids) || ids.length !== records.length)
      throw new Error(`audit append answered ${Array.isArray(ids) ? ids.length : 'no'} ids for ${records.length} records`);
  };
}

/** The sink the gateway uses: internalAuditAppend under group commit. */
export function internalAuditSink(accountsUrls: string, gateway: Signer): AuditSink {
  return batchingAuditSink(internalAuditAppend(accountsUrls, gateway));
}
