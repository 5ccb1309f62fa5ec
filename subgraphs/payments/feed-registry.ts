/**
 * TRANSITIONAL, and the one module-level registry left in payments: the running event feed of a
 * database, for two tests outside this subgraph only (test/alerts-feed.test.ts and
 * test/alerts-scale.test.ts call `eventFeedOf(stack.dbs.payments)` to see how many long polls
 * wait). Nothing in payments reads it: the service uses its own `services.feed`. Delete this file
 * (and its re-export in internal.ts) once subgraphs/service.ts exposes a running service's
 * `services` and those tests read `stack.subgraphs.payments.services.feed` instead.
 */
import type { Knex } from 'knex';
import type { EventFeed } from './event-feed.js';

const running = new WeakMap<Knex, EventFeed>();

/** Records the feed a service started on `db` (a restart on the same database replaces it). */
export function announceRunningFeed(db: Knex, feed: EventFeed): void {
  running.set(db, feed);
}

/** The feed of the payments service last started on `db` (tests only; see the module comment). */
export function eventFeedOf(db: Knex): EventFeed | undefined {
  return running.get(db);
}
