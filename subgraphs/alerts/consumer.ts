/**
 * The alerts consumer: long-polls the payments event feed (POST /internal/events on the payments
 * service, `waitMs`: the answer comes as soon as a purchase commits) from the position stored in
 * the alerts database, while it holds the consumer lease (lease.ts: one worker at a time across
 * alerts processes sharing the database), applies each page of events in one transaction
 * (apply.ts) and publishes the alerts raised on the bus after the commit. Delivery is at least
 * once (the position only moves in the transaction that applied the events), processing is
 * idempotent by event id, and it resumes where it stopped after a restart. Payments being down
 * only delays it: it retries with backoff.
 */
import { callInternal } from '../../lib/transport/internal-client.js';
import type { ServiceEnv } from '../definition.js';
import { applyEvents, type FeedEvent } from './apply.js';
import type { AlertBus } from './bus.js';
import { readPosition } from './data.js';
import { ConsumerLease, LEASE_RETRY_MS, LeaseLostError } from './lease.js';
import { backoff, WorkerLoop } from './loop.js';

/**
 * Long-poll wait per feed request: payments answers as soon as a movement commits, or after this
 * with no events. Well under the lease TTL, so the lease is renewed in time between polls.
 */
export const FEED_WAIT_MS = 5_000;
/**
 * Pause before the next poll when the feed answered empty well before the wait ended (a payments
 * service that does not wait, or one that is stopping): never spin.
 */
export const POLL_INTERVAL_MS = 150;
/** Events per feed request. */
export const BATCH_SIZE = 100;
/** Backoff after a failed poll (payments down, network error), from min to max. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 5_000;
/** Consecutive failed polls before the outage is logged. */
export const LOG_AFTER_FAILURES = 3;
/** Feed request timeout, on top of the long-poll wait. */
export const FEED_TIMEOUT_MS = 5_000;

export interface AlertConsumer {
  readonly loop: WorkerLoop;
  readonly lease: ConsumerLease;
  /** Whether this worker held the lease at its last attempt. */
  readonly leader: boolean;
  /** Events this worker applied since it started (a standby applies none). */
  readonly applied: number;
  start(): void;
  /** Stops the loop (aborting a pending long poll) and releases the lease. */
  stop(): Promise<void>;
}

/** The consumer of one alerts service, not started yet: `start()` once the service listens. */
export function createConsumer(env: ServiceEnv, bus: AlertBus, lease: ConsumerLease = new ConsumerLease(env.db)): AlertConsumer {
  const log = env.logger;
  let position: number | null = null;
  let failures = 0;
  let leader = false;
  let applied = 0;
  let earlyEmpty = 0;
  const loop = new WorkerLoop(
    'alerts consumer',
    async (loop) => {
      try {
        if (!(await lease.acquire())) {
          if (leader) log.warn({ feed: lease.feed }, 'consumer lease taken over by another worker; standing by');
          leader = false;
          position = null;
          return LEASE_RETRY_MS;
        }
        if (!leader) position = null; // (re)gained the lease: the stored position is the truth
        leader = true;
        const base = env.peers.payments;
        if (!base) throw new Error('the payments service URL is not known yet');
        if (position === null) position = await readPosition(env.db);
        const asked = Date.now();
        const { events } = await callInternal<{ events: FeedEvent[] }>(
          env.signer,
          'payments',
          base,
          'events',
          { after: position, limit: BATCH_SIZE, waitMs: FEED_WAIT_MS },
          { timeoutMs: FEED_WAIT_MS + FEED_TIMEOUT_MS, signal: loop.signal },
        );
        if (!loop.isRunning) return 0;
        const alerts = await applyEvents(env.db, events, { log, lease });
        applied += events.length;
        position = Math.max(position, events.at(-1)?.id ?? position);
        for (const alert of alerts) await bus.publish(alert);
        if (failures >= LOG_AFTER_FAILURES) log.warn({ failures, position }, 'event feed reachable again');
        failures = 0;
        // Re-poll at once: the feed itself waits for the next commit. An empty answer well before the
        // wait ended means payments did not wait (e.g. it is stopping: asking again at once lets it
        // close the connection); twice in a row, pause instead of spinning.
        earlyEmpty = events.length === 0 && Date.now() - asked < FEED_WAIT_MS / 2 ? earlyEmpty + 1 : 0;
        return earlyEmpty >= 2 ? POLL_INTERVAL_MS : 0;
      } catch (err) {
        position = null; // re-read the stored position: it is the truth
        if (!loop.isRunning) return 0; // stopping: the long poll was aborted
        if (err instanceof LeaseLostError) {
          log.warn({ feed: lease.feed }, `${err.message}; standing by`);
          leader = false;
          return LEASE_RETRY_MS;
        }
        failures += 1;
        // A single failed poll is routine (e.g. payments restarting or shutting down first): stay quiet.
        if (failures === LOG_AFTER_FAILURES || failures % 20 === 0)
          log.warn({ attempt: failures, err: err instanceof Error ? err.message : String(err) }, 'event feed unavailable');
        return backoff(failures, RETRY_MIN_MS, RETRY_MAX_MS);
      }
    },
    log,
  );
  return {
    loop,
    lease,
    get leader() {
      return leader;
    },
    get applied() {
      return applied;
    },
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      if (leader)
        await lease
          .release()
          .catch((err: unknown) =>
            log.warn({ feed: lease.feed, err: err instanceof Error ? err.message : String(err) }, 'could not release the consumer lease'),
          );
      leader = false;
    },
  };
}
