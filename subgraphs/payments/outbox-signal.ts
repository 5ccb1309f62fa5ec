/**
 * In-process signal "new outbox events were committed" for one payments database. The ledger
 * code calls `signalOutbox(db)` after a movement commits; the events feed (internal.ts) uses
 * `onOutbox(db, fn)` to answer a waiting (long-poll) consumer at once instead of at its next poll.
 * A lost signal only costs latency: the feed is always read from the database.
 */
import type { Knex } from 'knex';

const listeners = new WeakMap<Knex, Set<() => void>>();

/** Tells the listeners of `db` that outbox events were committed. Call after commit, never inside the transaction. */
export function signalOutbox(db: Knex): void {
  const set = listeners.get(db);
  if (!set) return;
  for (const fn of [...set]) fn();
}

/** Calls `fn` on every signal for `db` until the returned function is called. */
export function onOutbox(db: Knex, fn: () => void): () => void {
  let set = listeners.get(db);
  if (!set) listeners.set(db, (set = new Set()));
  set.add(fn);
  return () => set.delete(fn);
}
