/**
 * The outbox event feed of one payments service, as the internal `events` route serves it: reads
 * committed events from the ledger and, for a long poll, waits until the ledger commits new ones.
 * Wake-ups come from this service's ledger (its commit hook) or, with Redis, from another payments
 * process sharing the database (each process re-publishes its own commits on a channel scoped to
 * the database). A lost wake-up only costs latency: the feed is always read from the database.
 * A stopped feed answers every pending and every later wait at once, so a closing server is never
 * held up by long polls.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Knex } from 'knex';
import type { Logger } from '../../lib/log.js';
import { channelName, connectPubSub, databaseScope, type PubSub } from '../../lib/redis.js';
import type { Ledger, OutboxEvent } from './ledger/index.js';

export class EventFeed {
  private readonly waiters = new Set<() => void>();
  private stopped = false;
  private readonly unlisten: () => void;
  private pubsub: PubSub | null = null;
  private channel = '';
  private readonly origin = randomUUID();
  private publishQueued = false;

  constructor(private readonly deps: { ledger: Ledger; db: Knex; logger: Logger }) {
    this.unlisten = deps.ledger.onCommit(() => {
      this.wakeAll();
      this.publishSoon();
    });
  }

  /** Feed requests waiting right now (tests, metrics). */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Events after `after`, oldest first; with `waitMs` > 0 and none yet, waits for a commit (or the
   * end of the wait, or the feed stopping) and reads again. May still answer empty.
   */
  async read(after: number, limit: number, waitMs: number): Promise<OutboxEvent[]> {
    const { ledger } = this.deps;
    if (waitMs <= 0) return ledger.readEvents(after, limit);
    const deadline = Date.now() + waitMs;
    for (;;) {
      // Registered before the read, so a commit between the read and the wait is not missed.
      const w = this.waiter(Math.max(0, deadline - Date.now()));
      try {
        const events = await ledger.readEvents(after, limit);
        if (events.length > 0 || this.stopped || Date.now() >= deadline) return events;
        await w.promise;
      } finally {
        w.cancel();
      }
      if (this.stopped || Date.now() >= deadline) return ledger.readEvents(after, limit);
    }
  }

  /**
   * Serves the feed in a running service (its startWorkers): joins the other payments processes of
   * the database over Redis when `redisUrl` is set, and at stop answers the feed responses still
   * pending with `Connection: close`, so that the server's close does not wait for the callers'
   * idle keep-alive connections. Returns the stopper.
   */
  async serve(server: http.Server, redisUrl: string | undefined): Promise<() => Promise<void>> {
    const pending = new Set<http.ServerResponse>();
    const track = (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!req.url?.startsWith('/internal/events')) return;
      pending.add(res);
      res.on('close', () => pending.delete(res));
    };
    server.prependListener('request', track);
    if (redisUrl) {
      try {
        await this.connectRedis(redisUrl);
      } catch (err) {
        server.off('request', track);
        await this.stop();
        throw err;
      }
    }
    return async () => {
      server.off('request', track);
      for (const res of pending) if (!res.headersSent) res.shouldKeepAlive = false;
      pending.clear();
      await this.stop();
    };
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

  /** Joins the other payments processes of the same database over Redis. */
  private async connectRedis(url: string): Promise<void> {
    this.channel = channelName('payments', await databaseScope(this.deps.db), 'outbox');
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

  /** A wait that resolves on the next wake-up, on stop, or after `ms`; `cancel` ends it early. */
  private waiter(ms: number): { promise: Promise<void>; cancel(): void } {
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
        this.deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not publish an outbox wake-up to Redis');
      });
    });
  }
}
