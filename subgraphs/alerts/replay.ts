/**
 * Resumable alerts: the opaque cursor every alert carries (`ChargeAlert.cursor`), and where a
 * `chargeAlertRaised(after:)` subscription starts.
 *
 * An alert's position is the payments event that raised it (`event_id`): the consumer applies
 * events in order, one alert per purchase at most, so event ids order a user's alerts as they were
 * committed. The cursor is that event id with the alert's time, encoded like every other cursor of
 * the API (lib/cursor.ts); clients treat it as opaque. Replay is bounded, so that a forgotten
 * client cannot ask for an unbounded read: a cursor older than REPLAY_MAX_AGE_MS, or followed by
 * more than REPLAY_MAX_ALERTS alerts, is refused with CURSOR_EXPIRED (the client then lists its
 * alerts with `chargeAlerts` and subscribes without `after`).
 */
import type { Knex } from 'knex';
import { decodeCursor, encodeCursor } from '../../lib/cursor.js';
import { appError, badUserInput } from '../../lib/errors.js';
import { countAlertsOfUserAfter, type ChargeAlertRow } from './data.js';

/** The oldest cursor a subscription may resume after: 7 days. */
export const REPLAY_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** The most alerts one resumption replays. */
export const REPLAY_MAX_ALERTS = 1_000;

/** The opaque cursor of an alert: where a subscription resumes after it. */
export function alertCursor(alert: Pick<ChargeAlertRow, 'createdAt' | 'eventId'>): string {
  return encodeCursor({ at: alert.createdAt, id: alert.eventId ?? 0 });
}

/**
 * The event id after which the user's stream starts when the client passes `after`: the cursor's
 * position, once it is known to be within the replay bounds (CURSOR_EXPIRED otherwise).
 */
export async function replayStart(db: Knex, userId: string, after: string, now = Date.now()): Promise<number> {
  const invalid = () => badUserInput('"after" is not an alert cursor; pass the `cursor` of an alert you received.', 'after');
  let pos: ReturnType<typeof decodeCursor>;
  try {
    pos = decodeCursor(after, 'after');
  } catch {
    throw invalid();
  }
  const at = Date.parse(pos.at);
  if (Number.isNaN(at) || pos.id < 0) throw invalid();
  const expired = (why: string) =>
    appError('CURSOR_EXPIRED', `"after" is too old to resume from (${why}); list your alerts with chargeAlerts and subscribe without "after".`, {
      field: 'after',
      maxAgeMs: REPLAY_MAX_AGE_MS,
      maxAlerts: REPLAY_MAX_ALERTS,
    });
  if (now - at > REPLAY_MAX_AGE_MS) throw expired('more than 7 days');
  if ((await countAlertsOfUserAfter(db, userId, pos.id, REPLAY_MAX_ALERTS + 1)) > REPLAY_MAX_ALERTS)
    throw expired(`more than ${REPLAY_MAX_ALERTS} alerts since`);
  return pos.id;
}
