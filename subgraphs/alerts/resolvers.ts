import { badRequest, unauthenticated } from '../../lib/errors.js';
import type { SubgraphContext } from '../definition.js';
import { alertById, alertsOfUser, cursorBefore, insertFreezeCommand, readPosition, resolveAlert, type ChargeAlertRow } from './data.js';
import { alertCursor, replayStart } from './replay.js';
import type { AlertsLoaders } from './loaders.js';
import type { AlertsServices } from './services.js';

/**
 * Present in the context of a subscription served over the alerts service's graphql-ws endpoint:
 * what its signed grant says about where the stream starts (ws.ts).
 */
export interface SubscriptionState {
  /** The bridge's reconnection: replay alerts raised by events after this one (overrides `after`). */
  resumeAfter: number | null;
  /** When the client subscribed at the gateway: without a cursor, the stream starts there. */
  since: string | null;
  /** The event id of the alert being delivered, reported to the gateway as `extensions.cursor`. */
  lastEventId: number | null;
  /** That alert's traceparent (lib/tracing.ts), reported as `extensions.traceparent` when it has one. */
  lastTraceparent?: string | null;
}

export type AlertsContext = SubgraphContext<AlertsLoaders, AlertsServices> & { subscription?: SubscriptionState };

interface UserError {
  code: 'NOT_FOUND' | 'ALERT_ALREADY_RESOLVED';
  field: string[] | null;
  message: string;
}

function userError(code: UserError['code'], field: string[] | null, message: string) {
  return { alert: null, userErrors: [{ code, field, message }] };
}

export const resolvers = {
  Query: {
    chargeAlerts: (_: unknown, __: unknown, ctx: AlertsContext) => (ctx.caller.userId ? alertsOfUser(ctx.db, ctx.caller.userId) : []),
  },
  Mutation: {
    async resolveChargeAlert(_: unknown, args: { id: string; fraudulent: boolean }, ctx: AlertsContext) {
      const userId = ctx.caller.userId;
      if (!userId) throw unauthenticated('Resolving an alert needs a token.');
      const at = new Date().toISOString();
      const outcome = await ctx.db.transaction(async (trx) => {
        const alert = await alertById(trx, args.id);
        // Another user's alert is indistinguishable from a missing one.
        if (!alert || alert.userId !== userId) return userError('NOT_FOUND', ['id'], `No charge alert ${args.id} among yours.`);
        if (alert.status !== 'OPEN') return userError('ALERT_ALREADY_RESOLVED', ['id'], `Charge alert ${args.id} was already resolved (${alert.status}).`);
        const status = args.fraudulent ? 'CONFIRMED_FRAUD' : 'CONFIRMED_LEGITIMATE';
        if (!(await resolveAlert(trx, alert.id, status, at)))
          return userError('ALERT_ALREADY_RESOLVED', ['id'], `Charge alert ${args.id} was already resolved.`);
        // The freeze command commits with the status change, or neither does.
        if (args.fraudulent) await insertFreezeCommand(trx, alert.id, alert.accountId, at);
        return { alert: { ...alert, status, resolvedAt: at } as ChargeAlertRow, userErrors: [] as UserError[] };
      });
      // Committed: deliver the freeze now rather than at the dispatcher's next poll.
      if (args.fraudulent && outcome.alert) ctx.services.freezer.wake();
      return outcome;
    },
  },
  Subscription: {
    chargeAlertRaised: {
      async subscribe(_: unknown, args: { after?: string | null }, ctx: AlertsContext) {
        const sub = ctx.subscription;
        if (!sub) throw badRequest('Subscriptions are served over graphql-ws, through the gateway.');
        const userId = ctx.caller.userId;
        if (!userId) throw unauthenticated('Subscribing to alerts needs a token.');
        // Where the stream starts: where the bridge's last connection stopped; else after the
        // client's cursor (bounded); else the last alert raised before the client subscribed (so
        // one raised while the subscription was on its way is replayed); else now.
        const start =
          sub.resumeAfter ??
          (args.after ? await replayStart(ctx.db, userId, args.after) : sub.since ? await cursorBefore(ctx.db, userId, sub.since) : await readPosition(ctx.db));
        return ctx.services.bus.stream(ctx.db, userId, start);
      },
      resolve(alert: ChargeAlertRow, _: unknown, ctx: AlertsContext) {
        if (ctx.subscription) {
          ctx.subscription.lastEventId = alert.eventId;
          ctx.subscription.lastTraceparent = alert.traceparent ?? null;
        }
        return alert;
      },
    },
  },
  ChargeAlert: {
    __resolveReference: async (ref: { id: string }, ctx: AlertsContext) => {
      const row = await ctx.loaders.alert.load(ref.id);
      return row && row.userId === ctx.caller.userId ? row : null;
    },
    cursor: (alert: ChargeAlertRow) => alertCursor(alert),
    account: (alert: ChargeAlertRow) => ({ __typename: 'Account', id: alert.accountId }),
    purchase: (alert: ChargeAlertRow) => ({ __typename: 'Purchase', id: alert.purchaseId }),
  },
};
