import DataLoader from 'dataloader';
import type { Knex } from 'knex';
import { byKey, groupByKey } from '../../lib/loaders.js';
import * as data from './data.js';

export function createLoaders(db: Knex) {
  return {
    user: new DataLoader<string, data.UserRow | null>(async (ids) => byKey(ids, await data.usersByIds(db, ids), (r) => r.id)),
    account: new DataLoader<string, data.AccountRow | null>(async (ids) => byKey(ids, await data.accountsByIds(db, ids), (r) => r.id)),
    accountsOfUser: new DataLoader<string, data.AccountRow[]>(async (ids) => groupByKey(ids, await data.accountsByUserIds(db, ids), (r) => r.userId)),
    institution: new DataLoader<string, data.InstitutionRow | null>(async (ids) => byKey(ids, await data.institutionsByIds(db, ids), (r) => r.id)),
  };
}
export type AccountsLoaders = ReturnType<typeof createLoaders>;
