/**
 * The WebSocket transport: graphql-ws (`graphql-transport-ws`) on the gateway's own /graphql URL.
 * It does no checking of its own: a connection is authenticated by the same function as an HTTP
 * request (context.ts Authenticator, with `connectionParams.authorization`), and each `subscribe`
 * message runs the one operation pipeline (pipeline.ts: parse, validate, fence, plan) before the
 * bridge (subscription-bridge.ts) subscribes upstream.
 *
 * What the transport itself enforces, as the graphql-ws protocol (PROTOCOL.md) has it:
 * - a connection_init without a valid token (none, malformed, invalid, expired) is rejected with
 *   4403 Forbidden, which clients retry with fresh connectionParams (a refreshed token); a
 *   subscribe sent before the connection is acknowledged is closed 4401 Unauthorized (graphql-ws);
 * - at the token's expiry every subscription of the connection ends with an UNAUTHENTICATED error,
 *   then the socket closes with 4403: the client reconnects with a new token and resumes each
 *   subscription with the `cursor` of the last alert it received (`chargeAlertRaised(after:)`);
 * - a user may hold at most `maxSubscriptionsPerUser` subscriptions at once on this gateway, over
 *   all their connections (TOO_MANY_SUBSCRIPTIONS beyond).
 */
import type http from 'node:http';
import type { ExecutionResult, GraphQLError, GraphQLSchema } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { decodeJwt } from 'jose';
import { WebSocketServer } from 'ws';
import { bearerToken, type Caller } from '../lib/auth.js';
import { appError } from '../lib/errors.js';
import type { Authenticator } from './context.js';
import type { AcceptedSubscription, OperationPipeline } from './pipeline.js';
import type { Bridge, BridgedSubscription } from './subscription-bridge.js';

/** Close code for a rejected connection_init, and for a connection whose token expired (graphql-ws Forbidden). */
export const CLOSE_FORBIDDEN = CloseCode.Forbidden;
/** graphql-ws keep-alive (ping) interval towards clients. */
export const CLIENT_KEEPALIVE_MS = 12_000;
/** How long a client has to send connection_init. */
export const CONNECTION_INIT_TIMEOUT_MS = 5_000;
/** Subscriptions one user may hold at once on one gateway, by default (PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER). */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_USER = 10;
/** Longest delay setTimeout takes (about 24.8 days): a later expiry is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SubscriptionServer {
  /** Open client subscriptions (for tests and metrics). */
  readonly active: number;
  /**
   * Client subscriptions whose upstream subscription is established (acknowledged by the owning
   * subgraph, so every event from then on reaches the client). Tests wait on it before acting.
   */
  readonly live: number;
  /** Upstream graphql-ws sockets this gateway holds (shared by all its subscriptions). */
  readonly upstreamSockets: number;
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
  /** Subscriptions one user may hold at once on this gateway (default DEFAULT_MAX_SUBSCRIPTIONS_PER_USER). */
  maxSubscriptionsPerUser?: number;
}

/** Bookkeeping graphql-ws carries from onSubscribe to subscribe for one operation. */
interface SubscribeContext {
  accepted: AcceptedSubscription;
  /** When the gateway received the subscribe message: events from then on are delivered. */
  subscribedAt: string;
  /** The connection it belongs to. */
  connection: Connection;
}

/** One authenticated client connection. */
interface Connection {
  caller: Caller & { userId: string };
  /** The token's expiry (ms since the epoch), or null if it has none. */
  expiresAtMs: number | null;
  expired: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  /** Its running subscriptions. */
  subscriptions: Set<BridgedSubscription>;
  /** graphql-ws's operations of the connection (ids), to know when each was told of the expiry. */
  operations: () => string[];
  /** After the expiry: the operations not yet told (their error not yet sent). */
  untold: Set<string>;
  /** Closes its socket with 4403 (once every operation was told of the expiry). */
  close(reason: string): void;
}

function stringParam(params: Readonly<Record<string, unknown>>, ...names: string[]): string | undefined {
  for (const n of names) if (typeof params[n] === 'string') return params[n] as string;
  return undefined;
}

function expiredError(): GraphQLError {
  return appError(
    'UNAUTHENTICATED',
    'The token expired: reconnect with a new token and subscribe again with `after` set to the `cursor` of the last alert received.',
  );
}

export function serveSubscriptions(opts: SubscriptionServerOptions): SubscriptionServer {
  const maxPerUser = opts.maxSubscriptionsPerUser ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_USER;
  const connections = new WeakMap<object, Connection>();
  // Subscriptions held (or being set up) per user on this gateway, over all their connections.
  const perUser = new Map<string, number>();
  const release = (userId: string) => {
    const n = (perUser.get(userId) ?? 1) - 1;
    if (n > 0) perUser.set(userId, n);
    else perUser.delete(userId);
  };

  /** At the token's expiry: every subscription ends with UNAUTHENTICATED, then the socket closes 4403. */
  const expire = (conn: Connection) => {
    conn.timer = null;
    const left = conn.expiresAtMs === null ? Infinity : conn.expiresAtMs - Date.now();
    if (left > 0 && Number.isFinite(left)) {
      conn.timer = setTimeout(() => expire(conn), Math.min(left, MAX_TIMER_MS));
      return;
    }
    conn.expired = true;
    for (const id of conn.operations()) conn.untold.add(id);
    for (const s of [...conn.subscriptions]) s.end(expiredError());
    // The socket closes once graphql-ws has sent each operation its error (onComplete), or now if none.
    closeIfTold(conn);
  };
  const closeIfTold = (conn: Connection) => {
    if (conn.expired && conn.untold.size === 0) conn.close('Forbidden: token expired');
  };

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
          // graphql-ws PROTOCOL.md: a server rejecting the connection (authentication) closes with 4403.
          ctx.extra.socket.close(CLOSE_FORBIDDEN, `Forbidden: ${reason}`.slice(0, 120));
          return false;
        }
        const exp = decodeJwt(bearerToken(authorization)!).exp;
        const socket = ctx.extra.socket;
        const conn: Connection = {
          caller: { ...caller, userId: caller.userId },
          expiresAtMs: typeof exp === 'number' ? exp * 1000 : null,
          expired: false,
          timer: null,
          subscriptions: new Set(),
          operations: () => Object.keys(ctx.subscriptions),
          untold: new Set(),
          close: (why) => {
            if (socket.readyState === socket.OPEN) socket.close(CLOSE_FORBIDDEN, why);
          },
        };
        connections.set(ctx, conn);
        expire(conn);
        return true;
      },
      onClose(ctx) {
        const conn = connections.get(ctx);
        if (conn?.timer) clearTimeout(conn.timer);
      },
      onComplete(ctx, id) {
        const conn = connections.get(ctx);
        if (!conn?.untold.delete(id)) return;
        closeIfTold(conn);
      },
      async onSubscribe(ctx, id, payload) {
        const subscribedAt = new Date().toISOString();
        const conn = connections.get(ctx);
        if (!conn) return [appError('UNAUTHENTICATED', 'Unauthorized.')];
        /**
         * A refusal: graphql-ws sends it after this returns, and no onComplete follows; after the
         * expiry, the socket closes once that is sent.
         */
        const refuse = (errors: readonly GraphQLError[]) => {
          if (conn.untold.delete(id)) setImmediate(() => closeIfTold(conn));
          return errors as GraphQLError[];
        };
        if (conn.expired) return refuse([expiredError()]);
        const request = {
          query: payload.query,
          operationName: payload.operationName ?? undefined,
          variables: payload.variables ?? undefined,
          extensions: payload.extensions ?? undefined,
        };
        const address = (ctx.extra as { request?: { socket?: { remoteAddress?: string } } }).request?.socket?.remoteAddress;
        const { userId } = conn.caller;
        // Reserved now (the pipeline is asynchronous), released when the subscription ends or is refused.
        const held = perUser.get(userId) ?? 0;
        if (held >= maxPerUser) {
          // Refused at this step too: recorded when it selects payment-only data.
          await opts.pipeline.refused(request, conn.caller, 'TOO_MANY_SUBSCRIPTIONS', address);
          return refuse([
            appError('TOO_MANY_SUBSCRIPTIONS', `At most ${maxPerUser} subscriptions per user at once; end one before starting another.`, {
              limit: maxPerUser,
            }),
          ]);
        }
        perUser.set(userId, held + 1);
        let outcome: Awaited<ReturnType<OperationPipeline['subscribe']>>;
        try {
          outcome = await opts.pipeline.subscribe(request, conn.caller, address);
        } catch (err) {
          release(userId);
          refuse([]);
          throw err;
        }
        if ('errors' in outcome || conn.expired) {
          release(userId);
          return refuse('errors' in outcome ? outcome.errors : [expiredError()]);
        }
        const { accepted } = outcome;
        const contextValue: SubscribeContext = { accepted, subscribedAt, connection: conn };
        return {
          schema: opts.schema,
          document: accepted.subscription.document,
          operationName: accepted.subscription.operationName,
          variableValues: accepted.subscription.variables,
          contextValue,
        };
      },
      subscribe: (args): AsyncIterableIterator<ExecutionResult> => {
        const { accepted, subscribedAt, connection } = args.contextValue as SubscribeContext;
        const bridged: BridgedSubscription = opts.bridge.open(accepted, subscribedAt, () => {
          connection.subscriptions.delete(bridged);
          release(connection.caller.userId);
        });
        connection.subscriptions.add(bridged);
        return bridged.stream;
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
    get upstreamSockets() {
      return opts.bridge.upstreamSockets;
    },
    async dispose() {
      opts.bridge.closeAll();
      await disposable.dispose();
    },
  };
}
