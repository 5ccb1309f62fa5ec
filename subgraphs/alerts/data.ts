/** Data access for the alerts subgraph. */
import type { Knex } from 'knex';

export interface ChargeAlertRow {
  id: string;
  userId: string;
  accountId: string;
  purchaseId: string;
  status: 'OPEN' | 'CONFIRMED_LEGITIMATE' | 'CONFIRMED_FRAUD';
  riskScore: number;
  reasons: string[];
  createdAt: string;
}

interface RawAlert {
  id: string;
  user_id: string;
  account_id: string;
  purchase_id: string;
  status: ChargeAlertRow['status'];
  risk_score: number;
  reasons: string;
  created_at: string;
}

function toAlert(r: RawAlert): ChargeAlertRow {
  return { id: r.id, userId: r.user_id, accountId: r.account_id, purchaseId: r.purchase_id, status: r.status, riskScore: Number(r.risk_score), reasons: JSON.parse(r.reasons) as string[], createdAt: r.created_at };
}

export async function alertsByIds(db: Knex, ids: readonly string[]): Promise<ChargeAlertRow[]> {
  return ((await db('charge_alerts').select('*').whereIn('id', ids)) as RawAlert[]).map(toAlert);
}

export async function alertsOfUser(db: Knex, userId: string): Promise<ChargeAlertRow[]> {
  return ((await db('charge_alerts').select('*').where('user_id', userId).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])) as RawAlert[]).map(toAlert);
}
