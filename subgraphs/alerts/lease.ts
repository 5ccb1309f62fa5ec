/**
 * The consumer lease: at most one alerts worker consumes the payments feed at a time, however
 * many alerts processes share the database. One row per feed in `consumer_leases` (holder, expiry
 * in ms since the epoch). Plain SQL updates, so it works the same on SQLite and PostgreSQL.
 *
 * - `acquire()` takes the lease when it is free or expired, or renews it when already held.
 * - `fence(trx)` renews it inside the transaction that applies an event and fails that transaction
 *   when the lease is no longer this worker's (a worker paused past the expiry, then taken over):
 *   on PostgreSQL the UPDATE locks the lease row until commit, so a takeover waits for the
 *   holder's transaction and then sees the renewed expiry; SQLite has one writer anyway. So two
 *   workers never commit the processing of one event, even across a takeover. (Processing also
 *   stays idempotent by event id: position check, primary key of purchase_history, one alert per
 *   purchase.)
 * - `release()` on stop frees it at once, so a standby takes over within its retry interval
 *   instead of waiting for the expiry.
 *
 * Expiry uses the workers' clocks: keep them in sync (NTP) to well within LEASE_TTL_MS.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Knex } from 'knex';
import { PAYMENTS_FEED } from './data.js';

/** How long a lease lasts without renewal (a crashed holder is replaced after at most this). */
export const LEASE_TTL_MS = 15_000;
/** How often a standby worker tries to take the lease. */
export const LEASE_RETRY_MS = 1_000;

export class LeaseLostError extends Error {
  constructor(feed: string) {
    super(`the consumer lease of ${feed} is held by another worker`);
  }
}

export class ConsumerLease {
  /** This worker's identity in the lease row. */
  readonly holder = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  constructor(
    private readonly db: Knex,
    readonly feed: string = PAYMENTS_FEED,
    readonly ttlMs: number = LEASE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes (free or expired) or renews (already ours) the lease; false when another worker holds it. */
  async acquire(): Promise<boolean> {
    const now = this.now();
    const n = await this.db('consumer_leases')
      .where('feed', this.feed)
      .andWhere((q) => q.where('holder', this.holder).orWhere('expires_at', '<', now))
      .update({ holder: this.holder, expires_at: now + this.ttlMs, acquired_at: new Date(now).toISOString() });
    if (n === 1) return true;
    // A feed without its row (not the migrated default): create it free, then try once more.
    const inserted = (await this.db('consumer_leases')
      .insert({ feed: this.feed, holder: '', expires_at: 0, acquired_at: null })
      .onConflict('feed')
      .ignore()
      .returning('feed')) as unknown[];
    return inserted.length > 0 ? this.acquire() : false;
  }

  /** Renews the lease inside `trx`; throws LeaseLostError (rolling `trx` back) when it is not ours. */
  async fence(trx: Knex.Transaction): Promise<void> {
    const now = this.now();
    const n = await trx('consumer_leases')
      .where({ feed: this.feed, holder: this.holder })
      .andWhere('expires_at', '>=', now)
      .update({ expires_at: now + this.ttlMs });
    if (n !== 1) throw new LeaseLostError(this.feed);
  }

  /** Frees the lease if this worker holds it. */
  async release(): Promise<void> {
    await this.db('consumer_leases').where({ feed: this.feed, holder: this.holder }).update({ expires_at: 0 });
  }

  /** The current holder, or null when free or expired. */
  async currentHolder(): Promise<string | null> {
    const row = (await this.db('consumer_leases').select('holder', 'expires_at').where('feed', this.feed).first()) as
      { holder: string; expires_at: number | string } | undefined;
    return row && Number(row.expires_at) >= this.now() && row.holder ? row.holder : null;
  }
}
