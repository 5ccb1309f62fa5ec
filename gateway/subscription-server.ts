/**
 * The WebSocket transport: graphql-ws (`graphql-transport-ws`) on the gateway's own /graphql URL.
 * It does no checking of its own: a connection is authenticated by the same function as an HTTP
 * request (context.ts Authenticator, with `connectionParams.authorization`), and each `subscribe`
 * message runs the one operation pipeline (pipeline.ts: parse, validate, fence, plan) before the
 * bridge (subscription-bridge.ts) opens anything upstream.
 */
import type http from 'node:http';
import type { ExecutionResult, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Caller } from '../lib/auth.js';
import { appError } from '../lib/errors.js';
import type { Authenticator } from './context.js';
import type { AcceptedSubscription, OperationPipeline } from './pipeline.js';
import type { Bridge } from './subscription-bridge.js';

/** Close code for a connection without a valid token (graphql-ws "Unauthorized"). */
export const CLOSE_UNAUTHORIZED = 4401;
/** graphql-ws keep-alive (ping) interval towards clients. */
export const CLIENT_KEEPALIVE_MS = 12_000;
/** How long a client has to send connection_init. */
export const CONNECTION_INIT_TIMEOUT_MS = 5_000;
/** Operations one client connection may run at once (each holds an upstream connection). */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 10;

export interface SubscriptionServer {
  /** Open client subscriptions (for tests and metrics). */
  readonly active: number;
  /**
   * Client subscriptions whose upstream subscription is established (acknowledged by the owning
   * subgraph, so every event from then on reaches the client). Tests wait on it before acting.
   */
  readonly live: number;
  dispose(): Promise<void>;
}

export interface SubscriptionServerOptions {
  server: http.Server;
  pipeline: OperationPipeline;
  bridge: Bridge;
  auth: Authenticator;
  production: boolean;
  /** The API schema operations are written against (graphql-ws's execution args carry it). */
  schema: GraphQLSchema;
  /** The path graphql-ws is served on (default /graphql). */
  path?: string;
}

/** Bookkeeping graphql-ws carries from onSubscribe to subscribe for one operation. */
interface SubscribeContext {
  accepted: AcceptedSubscription;
  /** When the gateway received the subscribe message: events from then on are delivered. */
  subscribedAt: string;
}

function stringParam(params: Readonly<Record<string, unknown>>, ...names: string[]): string | undefined {
  for (const n of names) if (typeof params[n] === 'string') return params[n] as string;
  return undefined;
}

export function serveSubscriptions(opts: SubscriptionServerOptions): SubscriptionServer {
  const callers = new WeakMap<object, Caller>();
  const wss = new WebSocketServer({ server: opts.server, path: opts.path ?? '/graphql' });
  const disposable = useServer<Record<string, unknown>>(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      isProd: opts.production,
      async onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const authorization = stringParam(params, 'authorization', 'Authorization');
        let caller: Caller | null = null;
        let reason = 'connectionParams.authorization must be "Bearer <token>"';
        try {
          if (authorization) caller = await opts.auth.authenticate(authorization, stringParam(params, 'apollographql-client-name'));
        } catch (err) {
          reason = err instanceof Error ? err.message : 'authentication failed';
        }
        if (!caller || !caller.userId) {
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, `Unauthorized: ${reason}`.slice(0, 120));
          return false;
        }
        callers.set(ctx, caller);
        return true;
      },
      async onSubscribe(ctx, _id, payload) {
        const subscribedAt = new Date().toISOString();
        const caller = callers.get(ctx);
        if (!caller) return [appError('UNAUTHENTICATED', 'Unauthorized.')];
        // ctx.subscriptions already holds this one's reservation.
        const request = {
          query: payload.query,
          operationName: payload.operationName ?? undefined,
          variables: payload.variables ?? undefined,
          extensions: payload.extensions ?? undefined,
        };
        const address = (ctx.extra as { request?: { socket?: { remoteAddress?: string } } }).request?.socket?.remoteAddress;
        if (Object.keys(ctx.subscriptions).length > MAX_SUBSCRIPTIONS_PER_CONNECTION) {
          // Refused at this step too: recorded when it selects payment-only data.
          await opts.pipeline.refused(request, caller, 'TOO_MANY_SUBSCRIPTIONS', address);
          return [appError('TOO_MANY_SUBSCRIPTIONS', `At most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection.`)];
        }
        const outcome = await opts.pipeline.subscribe(request, caller, address);
        if ('errors' in outcome) return outcome.errors;
        const { accepted } = outcome;
        const contextValue: SubscribeContext = { accepted, subscribedAt };
        return {
          schema: opts.schema,
          document: accepted.subscription.document,
          operationName: accepted.subscription.operationName,
          variableValues: accepted.subscription.variables,
          contextValue,
        };
      },
      subscribe: (args): AsyncIterableIterator<ExecutionResult> => {
        const { accepted, subscribedAt } = args.contextValue as SubscribeContext;
        return opts.bridge.open(accepted, subscribedAt);
      },
    },
    wss,
    CLIENT_KEEPALIVE_MS,
  );

  return {
    get active() {
      return opts.bridge.active;
    },
    get live() {
      return opts.bridge.live;
    },
    async dispose() {
      opts.bridge.closeAll();
      await disposable.dispose();
    },
  };
}
