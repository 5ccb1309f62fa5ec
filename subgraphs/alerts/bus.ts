/**
 * Fan-out of raised alerts to live subscriptions, with replay from a cursor so that a subscriber
 * that reconnects misses nothing.
 *
 * - Single process (no Redis): `publish` delivers to this process's subscriptions.
 * - Scale-out (ServiceEnv.redisUrl): `publish` delivers locally at once and publishes the alert on
 *   a Redis channel scoped to the alerts database (lib/redis.ts); every alerts process delivers
 *   the messages of other processes to its own subscriptions. A subscription never gets an alert
 *   twice: its stream skips any event id at or below the last it delivered. After a Redis outage
 *   (messages published meanwhile are lost by Redis) every stream catches up from the database.
 *
 * Subscriptions are indexed by user: an alert only ever reaches its own user's streams.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { channelName, connectPubSub, databaseScope, type PubSub } from '../../lib/redis.js';
import { Channel } from '../../lib/channel.js';
import type { Logger } from '../../lib/log.js';
import { alertsOfUserAfter, type ChargeAlertRow } from './data.js';

interface Subscription {
  deliver(alert: ChargeAlertRow): void;
  /** Reads the user's alerts after the last delivered one from the database (after a Redis outage). */
  catchUp(): void;
}

interface WireMessage {
  origin: string;
  alert: ChargeAlertRow;
}

function isAlert(v: unknown): v is ChargeAlertRow {
  const a = v as Partial<ChargeAlertRow> | null;
  return !!a && typeof a.id === 'string' && typeof a.userId === 'string' && (a.eventId === null || typeof a.eventId === 'number') && Array.isArray(a.reasons);
}

export class AlertBus {
  private readonly byUser = new Map<string, Set<Subscription>>();
  private pubsub: PubSub | null = null;
  private channel = '';
  private readonly origin = randomUUID();

  /** In-process only until `connectRedis`; `log` is the alerts service's logger. */
  constructor(private readonly log: Logger) {}

  /**
   * Joins the other alerts processes of the database behind `db` over the Redis at `url`
   * (scale-out, ServiceEnv.redisUrl). Resolves once subscribed, so no alert published by another
   * process after that is missed.
   */
  async connectRedis(db: Knex, url: string): Promise<void> {
    this.channel = channelName(await databaseScope(db), 'alerts');
    const pubsub = connectPubSub(url, 'alerts-bus', { logger: this.log });
    try {
      await pubsub.subscribe(this.channel, (raw) => this.receive(raw));
    } catch (err) {
      await pubsub.close();
      throw err;
    }
    pubsub.onReconnect(() => {
      for (const subs of this.byUser.values()) for (const s of subs) s.catchUp();
    });
    this.pubsub = pubsub;
  }

  get distributed(): boolean {
    return this.pubsub !== null;
  }

  /**
   * Called by the consumer after the transaction that raised the alert committed: delivers to
   * this process's subscribers, then (with Redis) to the other processes'. A Redis failure is
   * logged, not thrown: the alert is committed, and subscribers elsewhere get it on their next
   * replay (reconnection or Redis recovery).
   */
  async publish(alert: ChargeAlertRow): Promise<void> {
    this.deliverLocal(alert);
    if (!this.pubsub) return;
    try {
      await this.pubsub.publish(this.channel, JSON.stringify({ origin: this.origin, alert } satisfies WireMessage));
    } catch (err) {
      this.log.warn({ alertId: alert.id, err: err instanceof Error ? err.message : String(err) }, 'could not publish an alert to Redis');
    }
  }

  private receive(raw: string): void {
    let msg: WireMessage;
    try {
      msg = JSON.parse(raw) as WireMessage;
    } catch {
      this.log.warn('ignoring a malformed bus message');
      return;
    }
    if (msg.origin === this.origin) return; // delivered locally already
    if (!isAlert(msg.alert)) {
      this.log.warn('ignoring a malformed bus message');
      return;
    }
    this.deliverLocal(msg.alert);
  }

  private deliverLocal(alert: ChargeAlertRow): void {
    const subs = this.byUser.get(alert.userId);
    if (!subs) return;
    for (const s of [...subs]) s.deliver(alert);
  }

  /**
   * The user's alerts raised by events after `cursor` (replayed from the database), then live
   * ones, in event order, each once. Only this user's alerts ever enter the stream.
   */
  stream(db: Knex, userId: string, cursor: number): Channel<ChargeAlertRow> {
    let last = cursor;
    let reading = 0;
    const buffered: ChargeAlertRow[] = [];
    const emit = (a: ChargeAlertRow) => {
      if (a.eventId !== null && a.eventId <= last) return;
      if (a.eventId !== null) last = a.eventId;
      channel.push(a);
    };
    // While the database is read, live alerts wait in `buffered` (then in event order), so an
    // alert raised in between is neither lost nor reordered.
    const replay = () => {
      reading += 1;
      alertsOfUserAfter(db, userId, last)
        .then((rows) => {
          for (const a of rows) emit(a);
        })
        .catch((err: unknown) => channel.fail(err))
        .finally(() => {
          reading -= 1;
          if (reading > 0) return;
          const queued = buffered.splice(0).sort((x, y) => (x.eventId ?? 0) - (y.eventId ?? 0));
          for (const a of queued) emit(a);
        });
    };
    const sub: Subscription = {
      deliver: (a) => {
        if (a.userId !== userId) return;
        if (reading > 0) buffered.push(a);
        else emit(a);
      },
      catchUp: replay,
    };
    // Listen first, then read the database: an alert raised in between is buffered, not lost.
    let subs = this.byUser.get(userId);
    if (!subs) this.byUser.set(userId, (subs = new Set()));
    subs.add(sub);
    const channel = new Channel<ChargeAlertRow>(() => {
      subs.delete(sub);
      if (subs.size === 0 && this.byUser.get(userId) === subs) this.byUser.delete(userId);
    });
    replay();
    return channel;
  }

  listenerCount(): number {
    let n = 0;
    for (const subs of this.byUser.values()) n += subs.size;
    return n;
  }

  /** Closes the Redis connections (streams are ended by their subscribers). */
  async close(): Promise<void> {
    const pubsub = this.pubsub;
    this.pubsub = null;
    await pubsub?.close();
  }
}
