/**
 * In-process fan-out of raised alerts to live subscriptions, with replay from a cursor so that a
 * subscriber that reconnects misses nothing. (Across several alerts processes this becomes Redis
 * pub/sub; the replay from the database stays the same.)
 */
import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { Channel } from './channel.js';
import { alertsOfUserAfter, type ChargeAlertRow } from './data.js';

export class AlertBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /** Called by the consumer after the transaction that raised the alert committed. */
  publish(alert: ChargeAlertRow): void {
    this.emitter.emit('alert', alert);
  }

  /**
   * The user's alerts raised by events after `cursor` (replayed from the database), then live
   * ones, in event order, each once. Only this user's alerts ever enter the stream.
   */
  stream(db: Knex, userId: string, cursor: number): Channel<ChargeAlertRow> {
    let last = cursor;
    let replaying = true;
    const buffered: ChargeAlertRow[] = [];
    const deliver = (a: ChargeAlertRow) => {
      if (a.eventId !== null && a.eventId <= last) return;
      if (a.eventId !== null) last = a.eventId;
      channel.push(a);
    };
    const listener = (a: ChargeAlertRow) => {
      if (a.userId !== userId) return;
      if (replaying) buffered.push(a);
      else deliver(a);
    };
    // Listen first, then read the database: an alert raised in between is buffered, not lost.
    this.emitter.on('alert', listener);
    const channel = new Channel<ChargeAlertRow>(() => this.emitter.off('alert', listener));
    alertsOfUserAfter(db, userId, cursor)
      .then((rows) => {
        for (const a of rows) deliver(a);
        replaying = false;
        for (const a of buffered.splice(0)) deliver(a);
      })
      .catch((err: unknown) => channel.fail(err));
    return channel;
  }

  listenerCount(): number {
    return this.emitter.listenerCount('alert');
  }
}

/** Wakes the freeze dispatcher of the worker that owns a database, right after a commit. */
const freezeWakers = new WeakMap<Knex, () => void>();

export function registerFreezeWaker(db: Knex, wake: () => void): () => void {
  freezeWakers.set(db, wake);
  return () => {
    if (freezeWakers.get(db) === wake) freezeWakers.delete(db);
  };
}

export function wakeFreezeDispatcher(db: Knex): void {
  freezeWakers.get(db)?.();
}
