/**
 * The alerts service's own graphql-ws endpoint (same http.Server, path /graphql), used only by
 * the gateway's subscription bridge.
 *
 * - The connection_init payload must carry the gateway's signature for alerts (lib/transport/signing.ts
 *   fields, made with the gateway's private key over wsConnectionInitBody(resumeAfter, since)) and
 *   thereby the caller; anything else (unsigned, signed by any other service, for another target,
 *   stale, replayed) is closed with 4401.
 * - Fence layer 4: an operation selecting payment-only fields is refused unless the signed caller's
 *   purpose is `payments`.
 * - Resume: the connection_ack payload carries `cursor`: the signed `resumeAfter` the bridge sent
 *   back on a reconnect, or on a first connection the last alert raised before the signed `since`
 *   (when the client subscribed at the gateway), or else the consumer position. A subscription
 *   first replays the caller's alerts raised after the cursor, then goes live. Every `next`
 *   carries `extensions.cursor`, the event id of that alert, so the bridge knows where to resume.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { subscribe as graphqlSubscribe, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Caller } from '../../lib/auth.js';
import { subgraphFence } from '../../fence/adapters/subgraph.js';
import { SIGNED_FIELDS, wsConnectionInitBody } from '../../lib/transport/signing.js';
import type { ServiceEnv } from '../definition.js';
import { cursorBefore, readPosition } from './data.js';
import { createLoaders } from './loaders.js';
import type { AlertsContext } from './resolvers.js';
import type { AlertsServices } from './services.js';

/** graphql-ws keep-alive (ping) interval of the alerts endpoint. */
export const WS_KEEPALIVE_MS = 10_000;
/** Close code for a connection that is not signed by the gateway. */
export const CLOSE_UNAUTHORIZED = 4401;

/** A WebSocket close reason is at most 123 bytes (RFC 6455 5.5): longer ones are cut. */
function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= 123
    ? text
    : `${bytes
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD$/, '')}...`;
}

export interface AlertSubscriptionServer {
  dispose(): Promise<void>;
}

export function serveAlertSubscriptions(
  server: http.Server,
  opts: { env: ServiceEnv; services: AlertsServices; schema: GraphQLSchema; typeDefs: DocumentNode },
): AlertSubscriptionServer {
  const { env, services, schema } = opts;
  // Fence layer 4 for subscriptions: the same check as the subgraph's HTTP endpoint.
  const fence = subgraphFence('alerts', opts.typeDefs, schema);
  const connections = new WeakMap<object, { caller: Caller; cursor: number }>();
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const disposable = useServer<Record<string, unknown>>(
    {
      schema,
      connectionInitWaitTimeout: 5_000,
      async onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const rawResume = params.resumeAfter;
        const resumeAfter = typeof rawResume === 'number' && Number.isSafeInteger(rawResume) && rawResume >= 0 ? rawResume : null;
        const fields: Record<string, string | undefined> = {};
        for (const h of SIGNED_FIELDS) {
          const v = params[h];
          fields[h] = typeof v === 'string' ? v : undefined;
        }
        const rawSince = params.since;
        const since = typeof rawSince === 'string' && rawSince.length <= 40 && !Number.isNaN(Date.parse(rawSince)) ? rawSince : null;
        const verdict = await env.verifyGatewayConnection(fields, wsConnectionInitBody(resumeAfter, since));
        if (!verdict.ok) {
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, closeReason(`Unauthorized: connection not signed by the gateway (${verdict.reason})`));
          return false;
        }
        const cursor = resumeAfter ?? (since && verdict.caller.userId ? await cursorBefore(env.db, verdict.caller.userId, since) : await readPosition(env.db));
        connections.set(ctx, { caller: verdict.caller, cursor });
        return { cursor };
      },
      // The same shape as an HTTP request's context (subgraphs/service.ts), the same services.
      context(ctx): AlertsContext {
        const conn = connections.get(ctx);
        if (!conn) throw new Error('subscription on a connection that was not acknowledged');
        return {
          db: env.db,
          caller: conn.caller,
          requestId: randomUUID(),
          loaders: createLoaders(env.db),
          services,
          subscription: { cursor: conn.cursor, lastEventId: null },
        };
      },
      subscribe(args: ExecutionArgs) {
        const caller = (args.contextValue as AlertsContext).caller;
        const refusal = fence.check(args.document, caller);
        if (refusal) return { errors: [refusal] };
        return graphqlSubscribe(args);
      },
      onNext(_ctx, _id, _payload, args, result) {
        const cursor = (args.contextValue as AlertsContext).subscription?.lastEventId ?? null;
        // The trace of the consumer span that raised the alert, continued by the gateway's bridge (lib/tracing.ts).
        const traceparent = (args.contextValue as AlertsContext).subscription?.lastTraceparent;
        return {
          ...(result.data !== undefined ? { data: result.data } : {}),
          ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}),
          extensions: { ...(result.extensions ?? {}), cursor, ...(traceparent ? { traceparent } : {}) },
        };
      },
    },
    wss,
    WS_KEEPALIVE_MS,
  );
  return {
    async dispose() {
      await disposable.dispose();
    },
  };
}
