import DataLoader from 'dataloader';
import type { Knex } from 'knex';
import { byKey } from '../../lib/loaders.js';
import type { CursorPosition } from '../../lib/cursor.js';
import * as data from './data.js';

export interface PageKey {
  accountId: string;
  /** Rows to fetch (page size + 1, to know whether a next page exists). */
  limit: number;
  after: CursorPosition | null;
}

export function createLoaders(db: Knex) {
  return {
    ledgerAccount: new DataLoader<string, data.LedgerAccountRow | null>(async (ids) => byKey(ids, await data.ledgerAccountsByIds(db, ids), (r) => r.id)),
    /** Pages of many accounts with the same page arguments load in one query. */
    page: new DataLoader<PageKey, data.PostingRow[], string>(
      async (keys) => {
        const groups = new Map<string, PageKey[]>();
        for (const k of keys) {
          const g = `${k.limit}|${k.after ? `${k.after.at}|${k.after.id}` : ''}`;
          const list = groups.get(g);
          if (list) list.push(k);
          else groups.set(g, [k]);
        }
        const results = new Map<string, data.PostingRow[]>();
        for (const group of groups.values()) {
          const first = group[0]!;
          const rows = await data.latestPostings(db, [...new Set(group.map((k) => k.accountId))], first.limit, first.after);
          for (const k of group)
            results.set(
              pageKeyString(k),
              rows.filter((r) => r.accountId === k.accountId),
            );
        }
        return keys.map((k) => results.get(pageKeyString(k)) ?? []);
      },
      { cacheKeyFn: pageKeyString },
    ),
    transfer: new DataLoader<string, data.TransferRow | null>(async (ids) => byKey(ids, await data.transfersByIds(db, ids), (r) => r.id)),
    purchase: new DataLoader<string, data.PurchaseRow | null>(async (ids) => byKey(ids, await data.purchasesByIds(db, ids), (r) => r.id)),
    postingCount: new DataLoader<string, number>(async (ids) => {
      const counts = await data.postingCounts(db, ids);
      return ids.map((id) => counts.get(id) ?? 0);
    }),
  };
}

function pageKeyString(k: PageKey): string {
  return `${k.accountId}|${k.limit}|${k.after ? `${k.after.at}|${k.after.id}` : ''}`;
}

export type PaymentsLoaders = ReturnType<typeof createLoaders>;
