/**
 * The gateway's subscription bridge (DESIGN.md sections 5 and 8). `@apollo/gateway` does not
 * execute subscriptions, so the gateway serves graphql-ws (`graphql-transport-ws`) on its own
 * `/graphql` URL and, for each subscription:
 *
 * 1. authenticates the connection: `connectionParams.authorization` = `Bearer <token>`, verified
 *    like the HTTP `Authorization` header (gateway/context.ts); a missing, invalid or expired token
 *    closes the socket with 4401;
 * 2. parses and validates the operation against the API schema, coerces its variables;
 * 3. runs the data-use fence (layers 2 and 5: operation check and audit, gateway/fence.ts), so an
 *    advertising caller is refused with FORBIDDEN_DATA_USE before any subgraph is contacted;
 * 4. plans it with the gateway's query planner over the same supergraph (a `Subscription` node:
 *    a `primary` fetch to the owning subgraph and the `rest` of the plan), and runs the fence's
 *    query-plan check (layer 3) on it;
 * 5. opens an upstream graphql-ws subscription to the owning subgraph with the primary fetch's
 *    operation. The connection_init payload is signed with that subgraph's key (lib/signing.ts
 *    over wsConnectionInitBody), carrying the caller, exactly like a signed HTTP request;
 * 6. for each upstream event, executes `Sequence[primary, rest]` with executeQueryPlan and a
 *    service map in which the owning subgraph's entry answers the primary fetch with the event and
 *    every other service is a normal signed data source, so fields of other subgraphs
 *    (`purchase { merchant { name country } }`) are joined. Events are processed in order.
 *    Subscriptions of the same caller (identity, purpose and client: exactly what the subgraphs are
 *    told) with the same operation and variables that receive the same event share one execution
 *    (SharedExecutions): with N tabs open, the joins run once per event, not N times. Nothing is
 *    shared across callers.
 *
 * Resilience: when the upstream connection drops (e.g. the subgraph restarts), the bridge
 * reconnects with backoff and re-subscribes, sending back (signed) the cursor of the last event it
 * received; the subgraph replays what was raised in between, and the bridge drops duplicates by
 * cursor, so the client's subscription survives with no loss and no duplicate. If the subgraph
 * stays unreachable for UPSTREAM_RETRY_ATTEMPTS attempts (about a minute), the client receives a
 * SUBGRAPH_UNAVAILABLE error and the subscription ends: never a silent stall.
 */
import type http from 'node:http';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type GraphQLDataSourceProcessOptions, type ServiceMap } from '@apollo/gateway';
import { operationFromDocument, Supergraph, type Schema } from '@apollo/federation-internals';
import { QueryPlanner, type FetchNode, type QueryPlan, type SubscriptionNode } from '@apollo/query-planner';
import {
  getOperationAST,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { createClient, type Client } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import WebSocket, { WebSocketServer } from 'ws';
import type { Caller } from '../lib/auth.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../lib/config.js';
import { deriveInternalKey } from '../lib/transport/internal-client.js';
import { deriveSubgraphKey, encodeCaller, signRaw } from '../lib/transport/signing.js';
import { wsConnectionInitBody } from '../lib/transport/signing.js';
import { callerFromHeaders, newRequestId, type GatewayContext } from './context.js';
import type { GatewayOptions } from './index.js';
import { Channel } from '../lib/channel.js';
import { Replicas, SignedDataSource } from './datasource.js';
import { createFence, internalAuditSink, type Fence } from '../fence/fence.js';

/** Close code for a connection without a valid token (graphql-ws "Unauthorized"). */
export const CLOSE_UNAUTHORIZED = 4401;
/** graphql-ws keep-alive (ping) interval towards clients. */
export const CLIENT_KEEPALIVE_MS = 12_000;
/** How long a client has to send connection_init. */
export const CONNECTION_INIT_TIMEOUT_MS = 5_000;
/** Upstream reconnection: attempts, and the backoff between them (doubling from min to max). */
export const UPSTREAM_RETRY_ATTEMPTS = 40;
export const UPSTREAM_RETRY_MIN_MS = 100;
export const UPSTREAM_RETRY_MAX_MS = 2_000;
/** Upstream keep-alive ping: a half-open connection is noticed within about this long. */
export const UPSTREAM_KEEPALIVE_MS = 10_000;
/** Operations one client connection may run at once (each holds an upstream connection). */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 10;
/** Query plans kept (by operation text and name). */
export const PLAN_CACHE_SIZE = 200;
/**
 * How long the joined result of one event stays shareable by the other subscriptions of the same
 * caller, operation and variables after it was computed (their copies of the event arrive within
 * milliseconds of each other); and how many such results are kept at most.
 */
export const SHARED_RESULT_MS = 2_000;
export const SHARED_RESULT_MAX = 5_000;

export interface SubscriptionServerOptions extends Pick<GatewayOptions, 'supergraphSdl' | 'subgraphUrls' | 'gatewaySecret' | 'jwtSecret' | 'production' | 'audit'> {
  server: http.Server;
  /** A fence to share with the HTTP path; built from the supergraph and `audit` when absent. */
  fence?: Fence;
  /** The path graphql-ws is served on (default /graphql). */
  path?: string;
  /** Extra validation rules (the gateway's request limits: depth, aliases, ...), as on HTTP. */
  validationRules?: readonly ValidationRule[];
  /** Upstream reconnection attempts before the client is told (default UPSTREAM_RETRY_ATTEMPTS). */
  upstreamRetryAttempts?: number;
}

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

interface BridgeContext extends GatewayContext {
  plan: QueryPlan & { node: SubscriptionNode };
  /** Operation text and name: with the caller and variables, what makes two executions alike. */
  operationKey: string;
  subscriptionId: string;
  /** When the gateway received the subscribe message: events from then on are delivered. */
  receivedAt: string;
}

/** The planner, schemas and data sources of one supergraph. */
class Planner {
  readonly apiSchema: Schema;
  readonly apiGraphQLSchema: GraphQLSchema;
  readonly supergraphSchema: GraphQLSchema;
  private readonly planner: QueryPlanner;
  private readonly cache = new Map<string, QueryPlan>();

  constructor(supergraphSdl: string) {
    const supergraph = Supergraph.build(supergraphSdl);
    this.apiSchema = supergraph.apiSchema();
    this.apiGraphQLSchema = this.apiSchema.toGraphQLJSSchema();
    this.supergraphSchema = supergraph.schema.toGraphQLJSSchema();
    this.planner = new QueryPlanner(supergraph);
  }

  plan(document: DocumentNode, source: string, operationName: string | undefined): QueryPlan {
    const key = `${operationName ?? ''}\n${source}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const plan = this.planner.buildQueryPlan(operationFromDocument(this.apiSchema, document, { operationName }));
    if (this.cache.size >= PLAN_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, plan);
    return plan;
  }
}

/**
 * An Apollo Server plugin for the HTTP path: a subscription sent over HTTP gets a clear 400 that
 * points to the WebSocket endpoint, instead of the gateway's "not supported" internal error.
 */
export function rejectHttpSubscriptions<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        // After every didResolveOperation hook (the fence's refusal and audit come first).
        async responseForOperation({ operation, response }) {
          if (operation.operation !== 'subscription') return null;
          if (response.http) response.http.status = 400;
          return {
            http: response.http,
            body: {
              kind: 'single',
              singleResult: {
                errors: [
                  {
                    message: 'Subscriptions are served over WebSocket (graphql-ws, subprotocol graphql-transport-ws) on this same /graphql URL, not over HTTP.',
                    extensions: { code: 'BAD_REQUEST' },
                  },
                ],
              },
            },
          };
        },
      };
    },
  };
}

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http(s?):/, 'ws$1:');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Turns what the upstream graphql-ws client reports as an error into a GraphQL error for the client. */
function upstreamError(err: unknown, serviceName: string): GraphQLError {
  if (Array.isArray(err) && err.length > 0) {
    const first = err[0] as { message?: unknown; extensions?: Record<string, unknown> };
    return new GraphQLError(typeof first.message === 'string' ? first.message : `${serviceName} refused the subscription`, { extensions: { ...(first.extensions ?? {}), serviceName } });
  }
  const close = err && typeof err === 'object' && 'code' in err ? (err as { code: unknown; reason?: unknown }) : null;
  const detail = close ? `connection closed with ${String(close.code)}${close.reason ? ` (${String(close.reason)})` : ''}` : err instanceof Error ? err.message : String(err);
  return new GraphQLError(`The ${serviceName} service is unavailable; the subscription has ended, subscribe again later (${detail}).`, {
    extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName },
  });
}

/**
 * Executions shared by identical inputs: one promise per key while it runs, kept SHARED_RESULT_MS
 * after it settled (a failure is not kept).
 */
class SharedExecutions {
  private readonly entries = new Map<string, Promise<ExecutionResult>>();

  run(key: string, execute: () => Promise<ExecutionResult>): Promise<ExecutionResult> {
    const existing = this.entries.get(key);
    if (existing) return existing;
    if (this.entries.size >= SHARED_RESULT_MAX) this.entries.delete(this.entries.keys().next().value!);
    const promise = execute();
    this.entries.set(key, promise);
    const forget = () => {
      if (this.entries.get(key) === promise) this.entries.delete(key);
    };
    promise.then(
      () => setTimeout(forget, SHARED_RESULT_MS).unref(),
      forget,
    );
    return promise;
  }
}

function cursorOf(result: ExecutionResult): number | null {
  const c = result.extensions?.cursor;
  return typeof c === 'number' && Number.isFinite(c) ? c : null;
}

export function serveSubscriptions(opts: SubscriptionServerOptions): SubscriptionServer {
  const planner = new Planner(opts.supergraphSdl);
  const fence =
    opts.fence ??
    createFence({
      supergraphSdl: opts.supergraphSdl,
      audit: opts.audit ?? internalAuditSink(opts.subgraphUrls.accounts, deriveInternalKey(opts.gatewaySecret, 'accounts')),
    });
  // The gateway's normal signed data sources, one per subgraph, for the `rest` of each plan.
  const services: ServiceMap = {};
  for (const name of SUBGRAPH_NAMES) services[name] = new SignedDataSource(opts.subgraphUrls[name], deriveSubgraphKey(opts.gatewaySecret, name));
  const callers = new WeakMap<object, Caller>();
  const replicas = new Map<SubgraphName, Replicas>();
  const replicasOf = (name: SubgraphName): Replicas => {
    let r = replicas.get(name);
    if (!r) replicas.set(name, (r = new Replicas(opts.subgraphUrls[name])));
    return r;
  };
  const bridges = new Set<{ close(): void; live: boolean }>();
  const shared = new SharedExecutions();

  /**
   * runRest, shared by the subscriptions of the same caller, operation and variables for the
   * same event (its cursor and its data).
   */
  function sharedRest(args: ExecutionArgs, ctx: BridgeContext, event: ExecutionResult): Promise<ExecutionResult> {
    const key = JSON.stringify([encodeCaller(ctx.caller), ctx.operationKey, args.variableValues ?? {}, cursorOf(event), event.data ?? null, event.errors ?? null]);
    return shared.run(key, () => runRest(args, ctx, event));
  }

  /** Runs `Sequence[primary, rest]` for one event: the primary fetch is answered by the event. */
  async function runRest(args: ExecutionArgs, ctx: BridgeContext, event: ExecutionResult): Promise<ExecutionResult> {
    const { primary, rest } = ctx.plan.node;
    if (!event.data) {
      // Errors arrive as JSON from the wire: rebuild them as GraphQL errors for the client.
      const errors = (event.errors ?? []) as unknown as { message?: string; extensions?: Record<string, unknown> }[];
      return { errors: errors.length ? errors.map((e) => new GraphQLError(e.message ?? 'subgraph error', { extensions: e.extensions })) : [new GraphQLError('Empty event from the subgraph.')] };
    }
    const owner = services[primary.serviceName];
    const eventSource: GraphQLDataSource = {
      async process(options: GraphQLDataSourceProcessOptions) {
        if (options.request.query === primary.operation) return { data: event.data as Record<string, unknown>, ...(event.errors ? { errors: event.errors as never } : {}) };
        if (!owner) throw new Error(`no data source for ${primary.serviceName}`);
        return owner.process(options);
      },
    };
    const plan: QueryPlan = { kind: 'QueryPlan', node: rest ? { kind: 'Sequence', nodes: [primary, rest] } : primary };
    const requestId = newRequestId(undefined);
    const requestContext = {
      request: { query: undefined, operationName: args.operationName ?? undefined, variables: args.variableValues ?? {} },
      document: args.document,
      operationName: args.operationName ?? null,
      context: { caller: ctx.caller, requestId } satisfies GatewayContext,
      metrics: {},
      logger: console,
      cache: undefined,
      overallCachePolicy: undefined,
    } as unknown as Parameters<typeof executeQueryPlan>[2];
    const operationContext = buildOperationContext({ schema: planner.apiGraphQLSchema, operationDocument: args.document, operationName: args.operationName ?? undefined });
    const result = await executeQueryPlan(plan, { ...services, [primary.serviceName]: eventSource }, requestContext, operationContext, planner.supergraphSchema, planner.apiSchema);
    return result as ExecutionResult;
  }

  /** One client subscription: an upstream graphql-ws subscription to the owning subgraph, bridged. */
  function bridge(args: ExecutionArgs): AsyncIterableIterator<ExecutionResult> {
    const ctx = args.contextValue as BridgeContext;
    const primary: FetchNode = ctx.plan.node.primary;
    const serviceName = primary.serviceName as SubgraphName;
    // Several processes of the owning subgraph (a comma-separated URL list): each (re)connection
    // takes the next one, so subscriptions spread over them and a reconnection fails over. The
    // replay by cursor makes the switch lossless (with REDIS_URL every alerts process sees every alert).
    const upstream = replicasOf(serviceName);
    const key = deriveSubgraphKey(opts.gatewaySecret, serviceName);
    const variables: Record<string, unknown> = {};
    for (const v of primary.variableUsages ?? []) if (args.variableValues && v in args.variableValues) variables[v] = args.variableValues[v];

    // Where to resume from after a reconnection: the cursor the subgraph acknowledged on the first
    // connection, then the cursor of every event received.
    let cursor: number | null = null;
    let chain: Promise<void> = Promise.resolve();
    let client: Client | null = null;
    let unsubscribe: (() => void) | null = null;
    const handle = {
      live: false,
      close: () => {
        unsubscribe?.();
        unsubscribe = null;
        void client?.dispose();
        client = null;
        bridges.delete(handle);
      },
    };
    const stream = new Channel<ExecutionResult>(() => handle.close());
    bridges.add(handle);

    client = createClient({
      url: () => wsUrl(upstream.next()),
      webSocketImpl: WebSocket,
      lazy: true,
      keepAlive: UPSTREAM_KEEPALIVE_MS,
      retryAttempts: opts.upstreamRetryAttempts ?? UPSTREAM_RETRY_ATTEMPTS,
      shouldRetry: () => true,
      retryWait: (retries) => sleep(Math.min(UPSTREAM_RETRY_MAX_MS, UPSTREAM_RETRY_MIN_MS * 2 ** retries) * (1 + Math.random() * 0.2)),
      // Evaluated on every (re)connection: a fresh timestamp and nonce, and where to start: the
      // cursor once known, else the time the client subscribed (an alert raised while the upstream
      // connection was being set up is replayed, not lost).
      connectionParams: () => {
        const since = cursor === null ? ctx.receivedAt : null;
        return {
          ...signRaw(key, encodeCaller(ctx.caller), wsConnectionInitBody(cursor, since)),
          ...(cursor !== null ? { resumeAfter: cursor } : { since }),
        };
      },
      on: {
        connected: (_socket, payload) => {
          const c = payload && typeof payload === 'object' ? (payload as { cursor?: unknown }).cursor : undefined;
          if (cursor === null && typeof c === 'number') cursor = c;
          handle.live = true;
        },
        closed: () => {
          handle.live = false;
        },
      },
    });
    unsubscribe = client.subscribe<Record<string, unknown>, Record<string, unknown>>(
      { query: primary.operation, variables, ...(primary.operationName ? { operationName: primary.operationName } : {}) },
      {
        next: (event) => {
          const c = cursorOf(event as ExecutionResult);
          if (c !== null) {
            if (cursor !== null && c <= cursor) return; // already received before a reconnection
            cursor = c;
          }
          chain = chain.then(async () => {
            try {
              stream.push(await sharedRest(args, ctx, event as ExecutionResult));
            } catch (err) {
              console.error('[gateway] subscription event could not be joined', err);
              stream.push({ errors: [new GraphQLError('A subscription event could not be completed.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })] });
            }
          });
        },
        error: (err) => {
          chain = chain.then(() => stream.fail(upstreamError(err, serviceName)));
        },
        complete: () => {
          chain = chain.then(() => stream.end());
        },
      },
    );
    return stream;
  }

  const path = opts.path ?? '/graphql';
  const wss = new WebSocketServer({ server: opts.server, path });
  const disposable = useServer<Record<string, unknown>>(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      isProd: opts.production,
      async onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const raw = params.authorization ?? params.Authorization;
        const authorization = typeof raw === 'string' ? raw : undefined;
        const clientName = typeof params['apollographql-client-name'] === 'string' ? (params['apollographql-client-name'] as string) : undefined;
        let caller: Caller | null = null;
        let reason = 'connectionParams.authorization must be "Bearer <token>"';
        try {
          if (authorization) caller = await callerFromHeaders(opts.jwtSecret, authorization, clientName);
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
      async onSubscribe(ctx, id, payload) {
        const receivedAt = new Date().toISOString();
        const caller = callers.get(ctx);
        if (!caller) return [new GraphQLError('Unauthorized.', { extensions: { code: 'UNAUTHENTICATED' } })];
        // ctx.subscriptions already holds this one's reservation.
        if (Object.keys(ctx.subscriptions).length > MAX_SUBSCRIPTIONS_PER_CONNECTION) {
          return [new GraphQLError(`At most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection.`, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [err instanceof GraphQLError ? err : new GraphQLError('Syntax error.')];
        }
        const errors = validate(planner.apiGraphQLSchema, document, opts.validationRules ? [...specifiedRules, ...opts.validationRules] : undefined);
        if (errors.length > 0) {
          // No "Did you mean ...?" hints: they would reveal payment-only field names (as on HTTP).
          for (const e of errors) e.message = e.message.replace(/ ?Did you mean(.+?)\?$/, '');
          return errors;
        }
        const operationName = payload.operationName ?? undefined;
        const op = getOperationAST(document, operationName);
        if (!op) return [new GraphQLError('Unable to identify the operation; give operationName.', { extensions: { code: 'BAD_REQUEST' } })];
        if (op.operation !== 'subscription') {
          return [new GraphQLError('Only subscriptions are served over WebSocket; send queries and mutations over HTTP POST.', { extensions: { code: 'BAD_REQUEST' } })];
        }
        const coerced = getVariableValues(planner.apiGraphQLSchema, op.variableDefinitions ?? [], payload.variables ?? {});
        if (coerced.errors) return coerced.errors;
        const requestId = newRequestId(undefined);
        // Fence layers 2 and 5 (gateway/fence.ts): refuses FORBIDDEN_DATA_USE and audits.
        try {
          await fence.enforce({ document, source: payload.query, operationName, variables: payload.variables ?? null, caller, requestId, layer: 'subscription' });
        } catch (err) {
          return [err instanceof GraphQLError ? err : new GraphQLError('The data-use fence refused the subscription.', { extensions: { code: 'FORBIDDEN_DATA_USE' } })];
        }
        let plan: QueryPlan;
        try {
          plan = planner.plan(document, payload.query, operationName);
        } catch (err) {
          return [new GraphQLError(`The subscription could not be planned: ${err instanceof Error ? err.message : String(err)}`, { extensions: { code: 'BAD_REQUEST' } })];
        }
        if (plan.node?.kind !== 'Subscription') return [new GraphQLError('The subscription has no subscription plan.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })];
        // Fence layer 3 on the subscription plan (primary and rest).
        const violations = fence.checkQueryPlan(plan);
        if (violations.length > 0) {
          console.error('[fence] QUERY PLAN VIOLATION in a subscription plan; refused', violations);
          return [new GraphQLError('The data-use fence aborted this subscription: its plan would send payment-only data to an advertising-zone subgraph.', { extensions: { code: 'FORBIDDEN_DATA_USE', fence: 'query-plan' } })];
        }
        const contextValue: BridgeContext = { caller, requestId, plan: plan as BridgeContext['plan'], operationKey: `${operationName ?? ''}\n${payload.query}`, subscriptionId: id, receivedAt };
        return { schema: planner.apiGraphQLSchema, document, operationName, variableValues: coerced.coerced, contextValue };
      },
      subscribe: (args) => bridge(args),
    },
    wss,
    CLIENT_KEEPALIVE_MS,
  );

  return {
    get active() {
      return bridges.size;
    },
    get live() {
      return [...bridges].filter((b) => b.live).length;
    },
    async dispose() {
      for (const b of [...bridges]) b.close();
      await disposable.dispose();
    },
  };
}
