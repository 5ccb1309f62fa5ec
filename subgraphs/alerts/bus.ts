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
 *
 * The bus is signed (docs/alerts.md "Scale-out"): Redis is shared infrastructure, so a message on
 * the channel proves nothing by itself. Every message is signed with the alerts service's own
 * Ed25519 key (ServiceEnv.signer) and verified against the alerts public key (derived from that
 * key: every alerts process holds it) before anything is delivered. On the channel:
 *
 *     {"message":"<BusMessage as JSON>","signature":"<base64 Ed25519 signature>"}
 *
 * where the signature covers `paygraph-alert-bus/v1\n<channel>\n<message>` (so it is valid on
 * this channel only, and for nothing but the bus) and BusMessage is `{ origin, sentAt, alert }`.
 * A receiver refuses, and logs (once per kind of refusal per minute at most, with the count of
 * those not logged): a malformed message, a missing signature, a wrong one, a stale one (sentAt
 * more than MAX_SKEW_MS away from its clock) and a replay (an alert id it already delivered,
 * raised here or taken from the bus, within the window a message is fresh). The id of a message is only remembered once its
 * signature holds, so a forgery cannot suppress the genuine alert of that id.
 */
import { createPublicKey, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { channelName, connectPubSub, databaseScope, type PubSub } from '../../lib/redis.js';
import { Channel } from '../../lib/channel.js';
import type { Logger } from '../../lib/log.js';
import type { Signer } from '../../lib/transport/keys.js';
import { MAX_SKEW_MS, NONCE_MEMORY_MS } from '../../lib/transport/signing.js';
import { alertsOfUserAfter, type ChargeAlertRow } from './data.js';

interface Subscription {
  deliver(alert: ChargeAlertRow): void;
  /** Reads the user's alerts after the last delivered one from the database (after a Redis outage). */
  catchUp(): void;
}

/** What is signed: the alert, the process that raised it, and when it was sent (its clock, ms). */
export interface BusMessage {
  origin: string;
  sentAt: number;
  alert: ChargeAlertRow;
}

/** What goes on the channel: the serialized BusMessage and its signature (base64). */
export interface BusEnvelope {
  message: string;
  signature: string;
}

/** Domain separation of the bus signatures: the alerts key signs HTTP requests too. */
export const BUS_SIGNATURE_CONTEXT = 'paygraph-alert-bus/v1';

/** Why a bus message was dropped. */
export type BusRefusal = 'malformed' | 'unsigned' | 'bad-signature' | 'stale' | 'replay';

/** At most one log line per kind of refusal per this interval. */
export const BUS_REFUSAL_LOG_INTERVAL_MS = 60_000;

/** The bytes a bus signature covers. */
export function busSignedBytes(channel: string, message: string): Buffer {
  return Buffer.from(`${BUS_SIGNATURE_CONTEXT}\n${channel}\n${message}`, 'utf8');
}

/** The envelope of `message` on `channel`, signed with `key` (the alerts service's private key). */
export function signBusMessage(key: KeyObject, channel: string, message: BusMessage): string {
  const serialized = JSON.stringify(message);
  return JSON.stringify({ message: serialized, signature: sign(null, busSignedBytes(channel, serialized), key).toString('base64') } satisfies BusEnvelope);
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
  private signer: Signer | null = null;
  private verifyKey: KeyObject | null = null;
  /** Alert ids taken from the bus -> when (arrival order), for NONCE_MEMORY_MS. */
  private readonly taken = new Map<string, number>();
  private readonly refusals = new Map<BusRefusal, { loggedAt: number; unlogged: number; total: number }>();

  /** In-process only until `connectRedis`; `log` is the alerts service's logger. */
  constructor(private readonly log: Logger) {}

  /** The Redis channel of the bus (empty until connectRedis). */
  get channelName(): string {
    return this.channel;
  }

  /** Messages refused so far, by kind. */
  refusedCounts(): Partial<Record<BusRefusal, number>> {
    return Object.fromEntries([...this.refusals].map(([k, v]) => [k, v.total]));
  }

  /**
   * Joins the other alerts processes of the database behind `db` over the Redis at `url`
   * (scale-out, ServiceEnv.redisUrl), signing with `signer` (the alerts service's own key,
   * ServiceEnv.signer) and accepting only messages signed by the alerts key. Resolves once
   * subscribed, so no alert published by another process after that is missed.
   */
  async connectRedis(db: Knex, url: string, signer: Signer): Promise<void> {
    if (signer.service !== 'alerts') throw new Error(`the alert bus signs with the alerts key, not ${signer.service}'s`);
    this.signer = signer;
    this.verifyKey = createPublicKey(signer.self);
    this.channel = channelName('alerts', await databaseScope(db), 'bus');
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
    if (!this.pubsub || !this.signer) return;
    const now = Date.now();
    // Delivered here: a copy of it coming back over the bus (from another origin) is a replay.
    this.take(alert.id, now);
    try {
      await this.pubsub.publish(this.channel, signBusMessage(this.signer.self, this.channel, { origin: this.origin, sentAt: now, alert }));
    } catch (err) {
      this.log.warn({ alertId: alert.id, err: err instanceof Error ? err.message : String(err) }, 'could not publish an alert to Redis');
    }
  }

  private receive(raw: string, now = Date.now()): void {
    let envelope: Partial<BusEnvelope>;
    try {
      envelope = JSON.parse(raw) as Partial<BusEnvelope>;
    } catch {
      return this.refuse('malformed', now);
    }
    if (!envelope || typeof envelope !== 'object' || Array.isArray(envelope)) return this.refuse('malformed', now);
    if (typeof envelope.signature !== 'string' || envelope.signature.length === 0) return this.refuse('unsigned', now);
    if (typeof envelope.message !== 'string') return this.refuse('malformed', now);
    const valid = (() => {
      try {
        return verify(null, busSignedBytes(this.channel, envelope.message), this.verifyKey!, Buffer.from(envelope.signature, 'base64'));
      } catch {
        return false;
      }
    })();
    if (!valid) return this.refuse('bad-signature', now);
    let msg: Partial<BusMessage>;
    try {
      msg = JSON.parse(envelope.message) as Partial<BusMessage>;
    } catch {
      return this.refuse('malformed', now);
    }
    if (!msg || typeof msg.origin !== 'string' || typeof msg.sentAt !== 'number' || !isAlert(msg.alert)) return this.refuse('malformed', now);
    if (msg.origin === this.origin) return; // delivered locally already
    if (Math.abs(now - msg.sentAt) > MAX_SKEW_MS) return this.refuse('stale', now);
    if (!this.take(msg.alert.id, now)) return this.refuse('replay', now);
    this.deliverLocal(msg.alert);
  }

  /** True the first time `id` comes off the bus within NONCE_MEMORY_MS (a message is fresh for ±MAX_SKEW_MS). */
  private take(id: string, now: number): boolean {
    for (const [seen, at] of this.taken) {
      if (now - at <= NONCE_MEMORY_MS) break;
      this.taken.delete(seen);
    }
    if (this.taken.has(id)) return false;
    this.taken.set(id, now);
    return true;
  }

  /** Drops a message and logs it: the first refusal of its kind, then at most once a minute (with how many went unlogged). */
  private refuse(kind: BusRefusal, now: number): void {
    const r = this.refusals.get(kind);
    if (r && now - r.loggedAt < BUS_REFUSAL_LOG_INTERVAL_MS) {
      r.unlogged += 1;
      r.total += 1;
      return;
    }
    this.log.warn({ refusal: kind, channel: this.channel, unloggedSinceLast: r?.unlogged ?? 0 }, 'refused a message on the alert bus');
    this.refusals.set(kind, { loggedAt: now, unlogged: 0, total: (r?.total ?? 0) + 1 });
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
