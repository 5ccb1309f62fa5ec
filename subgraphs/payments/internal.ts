/**
 * The payments service's signed internal routes (POST /internal/<name>, lib/transport/internal-client.ts), used by
 * the alerts service. Contract (docs/money.md, "Internal routes"):
 *
 * - `events` `{ after: number, limit: number, waitMs?: number }` (after >= 0, default 0; limit
 *   1..500, default 100; waitMs 0..EVENTS_MAX_WAIT_MS (30000), default 0: answer at once)
 *   -> `{ events: [{ id, type: 'PURCHASE_POSTED' | 'TRANSFER_POSTED', createdAt, payload }] }`,
 *   ids ascending, every id > after. Events are committed in id order (see ledger.appendOutbox).
 *   Long poll: with waitMs > 0 and no event after `after`, the answer waits until a movement
 *   commits (outbox-signal.ts; with Redis also one committed by another payments process sharing
 *   the database) or waitMs passes, then reads again; it may still be empty (the wait ended, or
 *   the service is stopping: a stopping service answers every pending wait at once). The caller's
 *   request timeout must exceed waitMs.
 * - `freeze` `{ accountId: string, alertId: string }` -> `{ frozen: true }` (also when already
 *   frozen), or `{ frozen: false, error: 'ACCOUNT_NOT_FOUND' }` for an id that is not a user's
 *   ledger account. Malformed bodies get HTTP 400.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Knex } from 'knex';
import { HttpError } from '../../lib/errors.js';
import { channelName, connectPubSub, databaseScope, type PubSub } from '../../lib/redis.js';
import type { InternalRoute, ServiceEnv } from '../definition.js';
import { ledgerTransaction } from './ledger.js';
import { EVENTS_MAX_LIMIT } from './limits.js';
import { onOutbox } from './outbox-signal.js';

/** Internal `events` route: longest long-poll wait a caller may ask for (`waitMs`). */
export const EVENTS_MAX_WAIT_MS = 30_000;

export interface OutboxEvent {
  id: number;
  type: 'PURCHASE_POSTED' | 'TRANSFER_POSTED';
  createdAt: string;
  payload: Record<string, unknown>;
}

function field(body: unknown, name: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

/** Events after an id, oldest first. */
export async function readEvents(db: Knex, after: number, limit: number): Promise<OutboxEvent[]> {
  const rows = (await db('outbox_events').select('id', 'event_type', 'payload', 'created_at').where('id', '>', after).orderBy('id', 'asc').limit(limit)) as {
    id: unknown;
    event_type: OutboxEvent['type'];
    payload: string;
    created_at: string;
  }[];
  return rows.map((r) => ({ id: Number(r.id), type: r.event_type, createdAt: r.created_at, payload: JSON.parse(r.payload) as Record<string, unknown> }));
}

/**
 * Wake-ups for long-polling feed requests of one payments service: a local commit
 * (onOutbox(db)), or, with Redis, a commit in another payments process sharing the database
 * (each process re-publishes its own commit signals on a channel scoped to the database). A lost
 * wake-up only costs latency: the feed is always read from the database.
 */
export class EventFeed {
  private readonly waiters = new Set<() => void>();
  private stopped = false;
  private readonly unlisten: () => void;
  private pubsub: PubSub | null = null;
  private channel = '';
  private readonly origin = randomUUID();
  private publishQueued = false;

  constructor(private readonly db: Knex) {
    this.unlisten = onOutbox(db, () => {
      this.wakeAll();
      this.publishSoon();
    });
  }

  /** Joins the other payments processes of the same database over Redis. */
  async connectRedis(url: string): Promise<void> {
    this.channel = channelName(await databaseScope(this.db), 'outbox');
    const pubsub = connectPubSub(url, 'payments-feed');
    try {
      await pubsub.subscribe(this.channel, (origin) => {
        if (origin !== this.origin) this.wakeAll();
      });
    } catch (err) {
      await pubsub.close();
      throw err;
    }
    // After a Redis outage a remote commit may have been missed: let waiting feeds re-read.
    pubsub.onReconnect(() => this.wakeAll());
    this.pubsub = pubsub;
  }

  /** Feed requests waiting right now (tests, metrics). */
  get waiting(): number {
    return this.waiters.size;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Registers a waiter now (so that a commit between the caller's read and its wait is not
   * missed); `promise` resolves on the next wake-up, on stop, or after `ms`.
   */
  waiter(ms: number): { promise: Promise<void>; cancel(): void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    if (this.stopped) {
      done();
      return { promise, cancel: () => undefined };
    }
    const timer = setTimeout(() => fire(), ms);
    const fire = () => {
      clearTimeout(timer);
      this.waiters.delete(fire);
      done();
    };
    this.waiters.add(fire);
    return { promise, cancel: fire };
  }

  /** Answers every pending wait now and refuses new ones; closes the Redis connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten();
    this.wakeAll();
    const pubsub = this.pubsub;
    this.pubsub = null;
    await pubsub?.close();
  }

  private wakeAll(): void {
    for (const fire of [...this.waiters]) fire();
  }

  /** One publish per burst of commits (a commit's wake-up is only a hint to re-read). */
  private publishSoon(): void {
    if (!this.pubsub || this.publishQueued) return;
    this.publishQueued = true;
    setImmediate(() => {
      this.publishQueued = false;
      this.pubsub?.publish(this.channel, this.origin).catch((err: unknown) => {
        console.warn(`[payments] could not publish an outbox wake-up to Redis: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
  }
}

/** The running feed of each payments database (a restarted service on the same database replaces it). */
const feeds = new WeakMap<Knex, EventFeed>();

/**
 * Starts the long-poll wake-ups of a payments service (its startWorkers); returns the stopper.
 * With the service's `server`, the feed responses pending at stop are answered with
 * `Connection: close`, so that the server's close does not wait for the callers' idle keep-alive
 * connections (they would otherwise linger until the keep-alive timeout).
 */
export async function startEventFeed(env: ServiceEnv, server?: http.Server): Promise<() => Promise<void>> {
  const feed = new EventFeed(env.db);
  const pending = new Set<http.ServerResponse>();
  const track = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!req.url?.startsWith('/internal/events')) return;
    pending.add(res);
    res.on('close', () => pending.delete(res));
  };
  server?.prependListener('request', track);
  if (env.redisUrl) {
    try {
      await feed.connectRedis(env.redisUrl);
    } catch (err) {
      await feed.stop();
      throw err;
    }
  }
  feeds.set(env.db, feed);
  // A stopped feed stays registered until a restart replaces it: requests that still arrive
  // while the server closes are answered at once instead of waiting.
  return async () => {
    server?.off('request', track);
    for (const res of pending) if (!res.headersSent) res.shouldKeepAlive = false;
    pending.clear();
    await feed.stop();
  };
}

/** The running feed of the payments service using `db` (tests: how many long polls are waiting). */
export function eventFeedOf(db: Knex): EventFeed | undefined {
  return feeds.get(db);
}

/**
 * Events after `after`; with `waitMs` > 0 and none yet, waits for a commit (or the end of the
 * wait, or the service stopping) and reads again.
 */
export async function readEventsWaiting(env: ServiceEnv, after: number, limit: number, waitMs: number): Promise<OutboxEvent[]> {
  if (waitMs <= 0) return readEvents(env.db, after, limit);
  // Without a started feed (a route called outside a running service), wait on the local signal only.
  const running = feeds.get(env.db);
  const feed = running ?? new EventFeed(env.db);
  const owned = !running;
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      const w = feed.waiter(Math.max(0, deadline - Date.now()));
      try {
        const events = await readEvents(env.db, after, limit);
        if (events.length > 0 || feed.isStopped || Date.now() >= deadline) return events;
        await w.promise;
      } finally {
        w.cancel();
      }
      if (feed.isStopped || Date.now() >= deadline) return readEvents(env.db, after, limit);
    }
  } finally {
    if (owned) await feed.stop();
  }
}

export type FreezeResult = { frozen: true } | { frozen: false; error: 'ACCOUNT_NOT_FOUND' };

/** Freezes a user's ledger account (idempotent), under the ledger write lock, and records why. */
export async function freezeAccount(db: Knex, accountId: string, alertId: string, now: Date = new Date()): Promise<FreezeResult> {
  return ledgerTransaction(db, async (trx) => {
    const row = (await trx('ledger_accounts').select('id', 'frozen').where({ id: accountId }).whereNotNull('owner_user_id').first()) as { id: string; frozen: unknown } | undefined;
    if (!row) return { frozen: false, error: 'ACCOUNT_NOT_FOUND' } as const;
    if (!(row.frozen === true || row.frozen === 1)) await trx('ledger_accounts').where({ id: accountId }).update({ frozen: true });
    const seen = await trx('account_freezes').where({ account_id: accountId, alert_id: alertId }).first();
    if (!seen) await trx('account_freezes').insert({ account_id: accountId, alert_id: alertId, frozen_at: now.toISOString() });
    return { frozen: true } as const;
  });
}

export const internalRoutes: Readonly<Record<string, InternalRoute>> = {
  events: async (env, body) => {
    const after = field(body, 'after') ?? 0;
    const limit = field(body, 'limit') ?? 100;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) throw new HttpError(400, '"after" must be a non-negative integer event id', 'BAD_REQUEST');
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > EVENTS_MAX_LIMIT) {
      throw new HttpError(400, `"limit" must be an integer from 1 to ${EVENTS_MAX_LIMIT}`, 'BAD_REQUEST');
    }
    const waitMs = field(body, 'waitMs') ?? 0;
    if (typeof waitMs !== 'number' || !Number.isInteger(waitMs) || waitMs < 0 || waitMs > EVENTS_MAX_WAIT_MS) {
      throw new HttpError(400, `"waitMs" must be an integer from 0 to ${EVENTS_MAX_WAIT_MS}`, 'BAD_REQUEST');
    }
    return { events: await readEventsWaiting(env, after, limit, waitMs) };
  },
  freeze: async (env, body) => {
    const accountId = field(body, 'accountId');
    const alertId = field(body, 'alertId');
    if (typeof accountId !== 'string' || accountId.length < 1 || accountId.length > 64) throw new HttpError(400, '"accountId" must be an account id', 'BAD_REQUEST');
    if (typeof alertId !== 'string' || alertId.length < 1 || alertId.length > 64) throw new HttpError(400, '"alertId" must be an alert id', 'BAD_REQUEST');
    return freezeAccount(env.db, accountId, alertId);
  },
};
