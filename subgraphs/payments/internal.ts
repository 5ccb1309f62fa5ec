/**
 * The payments service's signed internal routes (POST /internal/<name>, lib/transport/internal-client.ts), used by
 * the alerts service and accepted from it alone (signed with the alerts service's own key; any other
 * service is refused 403, subgraphs/service.ts). This file checks the bodies (HTTP 400 on anything malformed) and hands the
 * work to the service's collaborators (services.ts). Contract (docs/money.md, "Internal routes"):
 *
 * - `events` `{ after: number, limit: number, waitMs?: number }` (after >= 0, default 0; limit
 *   1..500, default 100; waitMs 0..EVENTS_MAX_WAIT_MS (30000), default 0: answer at once)
 *   -> `{ events: [{ id, type: 'PURCHASE_POSTED' | 'TRANSFER_POSTED', createdAt, payload }] }`,
 *   ids ascending, every id > after. Events are committed in id order (ledger/store.ts).
 *   Long poll: with waitMs > 0 and no event after `after`, the answer waits until the ledger
 *   commits a movement (event-feed.ts; with Redis also one committed by another payments process
 *   sharing the database) or waitMs passes, then reads again; it may still be empty (the wait
 *   ended, or the service is stopping: a stopping service answers every pending wait at once).
 *   The caller's request timeout must exceed waitMs.
 * - `freeze` `{ accountId: string, alertId: string }` -> `{ frozen: true }` (also when already
 *   frozen), or `{ frozen: false, error: 'ACCOUNT_NOT_FOUND' }` for an id that is not a user's
 *   ledger account.
 */
import { ERRORS, HttpError } from '../../lib/errors.js';
import type { InternalEndpoint } from '../definition.js';
import { EVENTS_MAX_LIMIT } from './limits.js';
import type { PaymentsServices } from './services.js';

export type { OutboxEvent } from './ledger/index.js';

/** Internal `events` route: longest long-poll wait a caller may ask for (`waitMs`). */
export const EVENTS_MAX_WAIT_MS = 30_000;

function field(body: unknown, name: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

const badRequest = (message: string) => new HttpError(ERRORS.BAD_REQUEST.status, message, 'BAD_REQUEST');

export const internalRoutes: Readonly<Record<string, InternalEndpoint<PaymentsServices>>> = {
  events: {
    // The alerts consumer (subgraphs/alerts/consumer.ts).
    callers: ['alerts'],
    handle: async (_env, body, _requestId, services) => {
      const after = field(body, 'after') ?? 0;
      const limit = field(body, 'limit') ?? 100;
      if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) throw badRequest('"after" must be a non-negative integer event id');
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > EVENTS_MAX_LIMIT) {
        throw badRequest(`"limit" must be an integer from 1 to ${EVENTS_MAX_LIMIT}`);
      }
      const waitMs = field(body, 'waitMs') ?? 0;
      if (typeof waitMs !== 'number' || !Number.isInteger(waitMs) || waitMs < 0 || waitMs > EVENTS_MAX_WAIT_MS) {
        throw badRequest(`"waitMs" must be an integer from 0 to ${EVENTS_MAX_WAIT_MS}`);
      }
      return { events: await services.feed.read(after, limit, waitMs) };
    },
  },
  freeze: {
    // The alerts freeze dispatcher (subgraphs/alerts/freezer.ts).
    callers: ['alerts'],
    handle: async (_env, body, _requestId, services) => {
      const accountId = field(body, 'accountId');
      const alertId = field(body, 'alertId');
      if (typeof accountId !== 'string' || accountId.length < 1 || accountId.length > 64) throw badRequest('"accountId" must be an account id');
      if (typeof alertId !== 'string' || alertId.length < 1 || alertId.length > 64) throw badRequest('"alertId" must be an alert id');
      return services.ledger.freezeAccount(accountId, alertId);
    },
  },
};
