/** Data access for the accounts subgraph: its own tables only, plain typed rows out. */
import type { Knex } from 'knex';
import type { AccountKind, InstitutionKind } from '../../seeds/fixture.js';

export interface UserRow {
  id: string;
  handle: string;
  name: string;
  country: string;
}
export interface AccountRow {
  id: string;
  userId: string;
  institutionId: string;
  kind: AccountKind;
  displayName: string;
  mask: string;
  currency: string;
}
export interface InstitutionRow {
  id: string;
  name: string;
  kind: InstitutionKind;
}

const accountColumns = ['id', 'user_id as userId', 'institution_id as institutionId', 'kind', 'display_name as displayName', 'mask', 'currency'];

export function usersByIds(db: Knex, ids: readonly string[]): Promise<UserRow[]> {
  return db('users').select('id', 'handle', 'name', 'country').whereIn('id', ids);
}

export function accountsByIds(db: Knex, ids: readonly string[]): Promise<AccountRow[]> {
  return db('accounts').select(accountColumns).whereIn('id', ids);
}

export function accountsByUserIds(db: Knex, userIds: readonly string[]): Promise<AccountRow[]> {
  return db('accounts').select(accountColumns).whereIn('user_id', userIds).orderBy(['user_id', 'id']);
}

export function institutionsByIds(db: Knex, ids: readonly string[]): Promise<InstitutionRow[]> {
  return db('institutions').select('id', 'name', 'kind').whereIn('id', ids);
}
