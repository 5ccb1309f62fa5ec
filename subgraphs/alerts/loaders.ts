import DataLoader from 'dataloader';
import type { Knex } from 'knex';
import { byKey } from '../../lib/loaders.js';
import * as data from './data.js';

export function createLoaders(db: Knex) {
  return {
    alert: new DataLoader<string, data.ChargeAlertRow | null>(async (ids) => byKey(ids, await data.alertsByIds(db, ids), (r) => r.id)),
  };
}
export type AlertsLoaders = ReturnType<typeof createLoaders>;
