/**
 * The alerts service's own graphql-ws endpoint (same http.Server, path /graphql), used only by
 * the gateway's subscription bridge, which multiplexes the subscriptions of all its clients over
 * one connection per alerts process.
 *
 * - The connection: its connection_init payload must carry the gateway's signature for alerts
 *   (lib/transport/signing.ts fields, made with the gateway's private key over
 *   wsConnectionInitBody()); anything else (unsigned, signed by any other service, for another
 *   target, stale, replayed) is refused with 4403 Forbidden, as the graphql-ws protocol says for a
 *   rejected connection_init. The connection names no caller.
 * - Each subscription: its `subscribe` message carries a grant in `extensions.paygraphGrant`, the
 *   gateway's signature over wsSubscribeBody (the query, operation name, variables, resume
 *   position and subscription time) for the caller. It is verified like every signature (keys,
 *   target, freshness, nonce once), so the caller of each subscription is proven on its own and
 *   bound to exactly that operation; a missing or bad grant gets a FORBIDDEN error.
 * - Fence layer 4: an operation selecting payment-only fields is refused unless the grant's caller
 *   purpose is `payments`.
 * - Resume (resolvers.ts): the stream starts after the grant's `resumeAfter` (the bridge's
 *   reconnection), else after the client's `after` cursor, else at the grant's `since`. Every
 *   `next` carries `extensions.cursor`, the event id of that alert, so the bridge knows where to
 *   resume and can drop duplicates.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { GraphQLError, subscribe as graphqlSubscribe, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Caller } from '../../lib/auth.js';
import { appError } from '../../lib/errors.js';
import { subgraphFence } from '../../fence/adapters/subgraph.js';
import { GRANT_EXTENSION, GRANT_REFUSED, SIGNED_FIELDS, wsConnectionInitBody, wsSubscribeBody } from '../../lib/transport/signing.js';
import type { ServiceEnv } from '../definition.js';
import { createLoaders } from './loaders.js';
import type { AlertsContext } from './resolvers.js';
import type { AlertsServices } from './services.js';

/** graphql-ws keep-alive (ping) interval of the alerts endpoint. */
export const WS_KEEPALIVE_MS = 10_000;
/** Close code for a connection_init that is not signed by the gateway (graphql-ws: Forbidden). */
export const CLOSE_FORBIDDEN = 4403;

/** What a verified grant allows one subscription. */
interface Grant {
  caller: Caller;
  resumeAfter: number | null;
  since: string | null;
}

function signatureFields(from: Readonly<Record<string, unknown>>): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (const h of SIGNED_FIELDS) {
    const v = from[h];
    fields[h] = typeof v === 'string' ? v : undefined;
  }
  return fields;
}

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
  // Verified grants, by connection and subscription id, from onSubscribe to the context.
  const grants = new WeakMap<object, Map<string, Grant>>();
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const disposable = useServer<Record<string, unknown>>(
    {
      schema,
      connectionInitWaitTimeout: 5_000,
      async onConnect(ctx) {
        const verdict = await env.verifyGatewayConnection(signatureFields(ctx.connectionParams ?? {}), wsConnectionInitBody());
        if (!verdict.ok) {
          ctx.extra.socket.close(CLOSE_FORBIDDEN, closeReason(`Forbidden: connection not signed by the gateway (${verdict.reason})`));
          return false;
        }
        grants.set(ctx, new Map());
        services.endpoint.connections += 1;
        return true;
      },
      onDisconnect() {
        services.endpoint.connections -= 1;
      },
      async onSubscribe(ctx, id, payload) {
        const raw = payload.extensions?.[GRANT_EXTENSION];
        const g = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
        const resumeAfter = typeof g.resumeAfter === 'number' && Number.isSafeInteger(g.resumeAfter) && g.resumeAfter >= 0 ? g.resumeAfter : null;
        const since = typeof g.since === 'string' && g.since.length <= 40 && !Number.isNaN(Date.parse(g.since)) ? g.since : null;
        const content = wsSubscribeBody({
          query: payload.query,
          operationName: payload.operationName ?? null,
          variables: payload.variables ?? {},
          resumeAfter,
          since,
        });
        const verdict = await env.verifyGatewayConnection(signatureFields(g), content);
        if (!verdict.ok) return [appError('FORBIDDEN', `Forbidden: subscription not granted by the gateway (${verdict.reason}).`, { reason: GRANT_REFUSED })];
        grants.get(ctx)?.set(id, { caller: verdict.caller, resumeAfter, since });
        return undefined;
      },
      onComplete(ctx, id) {
        grants.get(ctx)?.delete(id);
      },
      // The same shape as an HTTP request's context (subgraphs/service.ts), the same services.
      context(ctx, id): AlertsContext {
        const grant = grants.get(ctx)?.get(id);
        if (!grant) throw new GraphQLError('subscription without a verified grant');
        return {
          db: env.db,
          caller: grant.caller,
          requestId: randomUUID(),
          loaders: createLoaders(env.db),
          services,
          subscription: { resumeAfter: grant.resumeAfter, since: grant.since, lastEventId: null },
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
