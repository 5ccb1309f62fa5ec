/**
 * Migration 003's one-off: the records written before the transparency log existed become its
 * first leaves, in id order. Their rows gain the leaf columns through an UPDATE the append-only
 * triggers would refuse, so the owner's migration lifts them for this statement and puts them back.
 */
import type { Knex } from 'knex';
import { appendOnly } from '../../lib/db.js';
import { boundAuditRecord } from '../../fence/audit-record.js';
import { buildLeaves, insertNodes, loggedColumns } from './audit-tree.js';

export async function backfillAuditLog(knex: Knex, sqlite: boolean): Promise<void> {
  const rows = (await knex('data_access_log').select('*').orderBy('id')) as Record<string, unknown>[];
  if (rows.length === 0) return;
  const records = rows.map((r) => {
    const { record, marks } = boundAuditRecord({
      at: r.at,
      userId: r.user_id,
      purpose: r.purpose,
      client: r.client,
      operationName: r.operation_name,
      operationHash: r.operation_hash,
      coordinates: JSON.parse(String(r.coordinates)) as unknown,
      decision: r.decision,
      layer: r.layer,
      requestId: r.request_id,
    });
    return { record, marks };
  });
  const { logged, nodes } = await buildLeaves(knex, 0, records, new Map());
  if (sqlite) for (const op of ['update', 'delete']) await knex.raw(`DROP TRIGGER IF EXISTS data_access_log_no_${op}`);
  else await knex.raw('ALTER TABLE data_access_log DISABLE TRIGGER data_access_log_append_only');
  for (const [i, l] of logged.entries()) await knex('data_access_log').where({ id: rows[i]!.id }).update(loggedColumns(l));
  if (sqlite) await appendOnly(knex, 'data_access_log');
  else await knex.raw('ALTER TABLE data_access_log ENABLE TRIGGER data_access_log_append_only');
  await insertNodes(knex, nodes);
}
