/**
 * The subscription bridge: runs one accepted subscription (gateway/pipeline.ts planned it and the
 * fence checked it) against the subgraph that owns its root field. `@apollo/gateway` does not
 * execute subscriptions, so for each one the bridge:
 *
 * 1. subscribes upstream, over the gateway's one shared graphql-ws connection to one of the
 *    owning subgraph's processes (upstream-pool.ts: multiplexed, so 1,000 subscribers cost one
 *    socket per process), with the primary fetch of the plan. The socket is the gateway's; the
 *    subscribe message carries a grant signed with the gateway's private key for that subgraph
 *    (lib/transport/signing.ts signSubscribeGrant) binding the caller to that operation, its
 *    variables and its resume position, so the subgraph's own fence (layer 4) sees who is asking,
 *    per subscription, exactly like a signed HTTP request;
 * 2. for each upstream event, executes `Sequence[primary, rest]` with executeQueryPlan and a
 *    service map in which the owning subgraph's entry answers the primary fetch with the event and
 *    every other service is a normal signed data source, so fields of other subgraphs
 *    (`purchase { merchant { name country } }`) are joined. Events are processed in order.
 *    Subscriptions of the same caller (identity, purpose and client: exactly what the subgraphs are
 *    told) with the same operation and variables that receive the same event share one execution
 *    (SharedExecutions): with N tabs open, the joins run once per event, not N times. Nothing is
 *    shared across callers.
 *
 * Resilience: when the upstream connection drops (e.g. the subgraph restarts), every subscription
 * on it re-subscribes with backoff on the subgraph's next process, with a fresh grant carrying the
 * sequence of the last event it received (`resumeAfter`); the subgraph replays what was raised in
 * between, and the bridge drops duplicates by sequence, so the client's subscription survives with
 * no loss and no duplicate. Before any event, it re-sends where the client asked to start (its
 * `after` cursor, or the time it subscribed). If the subgraph stays unreachable for
 * UPSTREAM_RETRY_ATTEMPTS attempts in a row (about a minute), the client receives a
 * SUBGRAPH_UNAVAILABLE error and the subscription ends: never a silent stall.
 */
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type GraphQLDataSourceProcessOptions, type ServiceMap } from '@apollo/gateway';
import type { FetchNode, QueryPlan } from '@apollo/query-planner';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { Channel } from '../lib/channel.js';
import { SUBGRAPH_NAMES, type SubgraphName } from '../lib/config.js';
import { appError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { continueTrace } from '../lib/tracing.js';
import { Replicas } from '../lib/transport/replicas.js';
import type { ServiceKeys } from '../lib/transport/keys.js';
import { encodeCaller, GRANT_EXTENSION, GRANT_REFUSED, signSubscribeGrant, type SubscribeGrant } from '../lib/transport/signing.js';
import { newRequestId, type GatewayContext } from './context.js';
import { SignedDataSource } from './data-source.js';
import type { AcceptedSubscription } from './pipeline.js';
import type { Planner } from './planner.js';
import { UpstreamPool } from './upstream-pool.js';

/** Upstream reconnection: attempts, and the backoff between them (doubling from min to max). */
export const UPSTREAM_RETRY_ATTEMPTS = 40;
export const UPSTREAM_RETRY_MIN_MS = 100;
export const UPSTREAM_RETRY_MAX_MS = 2_000;
/**
 * How long the joined result of one event stays shareable by the other subscriptions of the same
 * caller, operation and variables after it was computed (their copies of the event arrive within
 * milliseconds of each other); and how many such results are kept at most.
 */
export const SHARED_RESULT_MS = 2_000;
export const SHARED_RESULT_MAX = 5_000;

export interface BridgeOptions {
  subgraphUrls: Readonly<Record<SubgraphName, string>>;
  /** The gateway's keys: it signs every upstream connection and fetch with its own private key. */
  keys: ServiceKeys;
  planner: Planner;
  logger: Logger;
  /** Upstream reconnection attempts before the client is told (default UPSTREAM_RETRY_ATTEMPTS). */
  upstreamRetryAttempts?: number;
}

/** One bridged subscription. */
export interface BridgedSubscription {
  /** The events for its client, in order; `return()` (the client unsubscribed, or its socket closed) ends it. */
  readonly stream: AsyncIterableIterator<ExecutionResult>;
  /** Ends it with `error`, after the events already queued (e.g. its token expired). */
  end(error: GraphQLError): void;
}

export interface Bridge {
  /**
   * Runs one accepted subscription, from `subscribedAt` (when the gateway received it) or the
   * client's `after` cursor; `onEnd` runs once when it ends, however it ends.
   */
  open(accepted: AcceptedSubscription, subscribedAt: string, onEnd?: () => void): BridgedSubscription;
  /** Open subscriptions. */
  readonly active: number;
  /** Open subscriptions whose upstream socket is acknowledged (every event from then on arrives). */
  readonly live: number;
  /** Upstream sockets open right now (one per subgraph process in use, shared by every subscription). */
  readonly upstreamSockets: number;
  closeAll(): void;
}

function cursorOf(result: ExecutionResult): number | null {
  const c = result.extensions?.cursor;
  return typeof c === 'number' && Number.isFinite(c) ? c : null;
}

/** Whether the upstream graphql-ws client reports GraphQL errors (the subgraph refused or ended the subscription), not a dropped connection. */
function isGraphQLErrors(err: unknown): err is { message?: unknown; extensions?: Record<string, unknown> }[] {
  return Array.isArray(err) && err.length > 0;
}

/** Turns what the upstream graphql-ws client reports as an error into a GraphQL error for the client. */
function upstreamError(err: unknown, serviceName: string): GraphQLError {
  if (Array.isArray(err) && err.length > 0) {
    const first = err[0] as { message?: unknown; extensions?: Record<string, unknown> };
    // `http` is the subgraph's own HTTP status hint: meaningless on the client's WebSocket.
    const { http: _http, ...extensions } = first.extensions ?? {};
    return new GraphQLError(typeof first.message === 'string' ? first.message : `${serviceName} refused the subscription`, {
      extensions: { ...extensions, serviceName },
    });
  }
  const close = err && typeof err === 'object' && 'code' in err ? (err as { code: unknown; reason?: unknown }) : null;
  const detail = close
    ? `connection closed with ${String(close.code)}${close.reason ? ` (${String(close.reason)})` : ''}`
    : err instanceof Error
      ? err.message
      : String(err);
  return appError('SUBGRAPH_UNAVAILABLE', `The ${serviceName} service is unavailable; the subscription has ended, subscribe again later (${detail}).`, {
    serviceName,
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
    promise.then(() => setTimeout(forget, SHARED_RESULT_MS).unref(), forget);
    return promise;
  }
}

export function createBridge(opts: BridgeOptions): Bridge {
  const { planner } = opts;
  // The gateway's normal signed data sources, one per subgraph, for the `rest` of each plan.
  const services: ServiceMap = {};
  for (const name of SUBGRAPH_NAMES) services[name] = new SignedDataSource(opts.subgraphUrls[name], opts.keys, name);
  const replicas = new Map<SubgraphName, Replicas>();
  const replicasOf = (name: SubgraphName): Replicas => {
    let r = replicas.get(name);
    if (!r) replicas.set(name, (r = new Replicas(opts.subgraphUrls[name])));
    return r;
  };
  const pool = new UpstreamPool(opts.keys);
  const bridges = new Set<{ close(): void; readonly live: boolean }>();
  const shared = new SharedExecutions();
  const maxAttempts = opts.upstreamRetryAttempts ?? UPSTREAM_RETRY_ATTEMPTS;

  /**
   * runRest, shared by the subscriptions of the same caller, operation and variables for the
   * same event (its cursor and its data).
   */
  function sharedRest(sub: AcceptedSubscription, event: ExecutionResult): Promise<ExecutionResult> {
    const { variables, operationName, document } = sub.subscription;
    const key = JSON.stringify([encodeCaller(sub.caller), operationName ?? '', document, variables, cursorOf(event), event.data ?? null, event.errors ?? null]);
    return shared.run(key, () => runRest(sub, event));
  }

  /** Runs `Sequence[primary, rest]` for one event: the primary fetch is answered by the event. */
  async function runRest(sub: AcceptedSubscription, event: ExecutionResult): Promise<ExecutionResult> {
    const { plan, variables, operationName, document } = sub.subscription;
    const { primary, rest } = plan.node;
    if (!event.data) {
      // Errors arrive as JSON from the wire: rebuild them as GraphQL errors for the client.
      const errors = (event.errors ?? []) as unknown as { message?: string; extensions?: Record<string, unknown> }[];
      return {
        errors: errors.length
          ? errors.map((e) => new GraphQLError(e.message ?? 'subgraph error', { extensions: e.extensions }))
          : [new GraphQLError('Empty event from the subgraph.')],
      };
    }
    const owner = services[primary.serviceName];
    const eventSource: GraphQLDataSource = {
      async process(options: GraphQLDataSourceProcessOptions) {
        if (options.request.query === primary.operation)
          return { data: event.data as Record<string, unknown>, ...(event.errors ? { errors: event.errors as never } : {}) };
        if (!owner) throw new Error(`no data source for ${primary.serviceName}`);
        return owner.process(options);
      },
    };
    const joined: QueryPlan = { kind: 'QueryPlan', node: rest ? { kind: 'Sequence', nodes: [primary, rest] } : primary };
    const requestId = newRequestId(undefined);
    const requestContext = {
      request: { query: undefined, operationName, variables },
      document,
      operationName: operationName ?? null,
      context: { caller: sub.caller, requestId, transport: 'ws' } satisfies GatewayContext,
      metrics: {},
      logger: opts.logger,
      cache: undefined,
      overallCachePolicy: undefined,
    } as unknown as Parameters<typeof executeQueryPlan>[2];
    const operationContext = buildOperationContext({ schema: planner.apiGraphQLSchema, operationDocument: document, operationName });
    const result = await executeQueryPlan(
      joined,
      { ...services, [primary.serviceName]: eventSource },
      requestContext,
      operationContext,
      planner.supergraphSchema,
      planner.apiSchema,
    );
    return result as ExecutionResult;
  }

  /** One client subscription: an upstream subscription on the shared socket to the owning subgraph, bridged. */
  function bridge(sub: AcceptedSubscription, subscribedAt: string, onEnd?: () => void): BridgedSubscription {
    const primary: FetchNode = sub.subscription.plan.node.primary;
    const serviceName = primary.serviceName as SubgraphName;
    // Several processes of the owning subgraph (a comma-separated URL list): each (re)subscription
    // takes the next one, so subscriptions spread over them and a reconnection fails over. The
    // replay by sequence makes the switch lossless (with REDIS_URL every alerts process sees every alert).
    const upstream = replicasOf(serviceName);
    const variables: Record<string, unknown> = {};
    for (const v of primary.variableUsages ?? []) if (v in sub.subscription.variables) variables[v] = sub.subscription.variables[v];
    const operationName = primary.operationName ?? null;

    // The sequence of the last event received: where a re-subscription resumes.
    let cursor: number | null = null;
    let chain: Promise<void> = Promise.resolve();
    let current: { upstream: ReturnType<UpstreamPool['of']>; unsubscribe: () => void } | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let failures = 0;
    let closed = false;
    const handle = {
      get live() {
        return !closed && current !== null && current.upstream.open;
      },
      close: () => {
        if (closed) return;
        closed = true;
        if (retry) clearTimeout(retry);
        current?.unsubscribe();
        current = null;
        bridges.delete(handle);
        onEnd?.();
      },
    };
    const stream = new Channel<ExecutionResult>(() => handle.close());
    bridges.add(handle);
    const fail = (error: GraphQLError) => {
      chain = chain.then(() => stream.fail(error));
    };

    const attempt = async (): Promise<void> => {
      retry = null;
      if (closed) return;
      const target = pool.of(serviceName, upstream.next());
      const grant: SubscribeGrant = { query: primary.operation, operationName, variables, resumeAfter: cursor, since: cursor === null ? subscribedAt : null };
      let fields: Record<string, string>;
      try {
        fields = await signSubscribeGrant(opts.keys, serviceName, sub.caller, grant);
      } catch (err) {
        return fail(upstreamError(err, serviceName));
      }
      if (closed) return;
      // Whether this subscription got through: its socket was already up, or came up after it was sent.
      const connectsBefore = target.connects;
      const wasOpen = target.open;
      const unsubscribe = target.client.subscribe<Record<string, unknown>, Record<string, unknown>>(
        {
          query: primary.operation,
          variables,
          ...(operationName ? { operationName } : {}),
          extensions: { [GRANT_EXTENSION]: { ...fields, resumeAfter: grant.resumeAfter, since: grant.since } },
        },
        {
          next: (event) => {
            failures = 0;
            // Errors and no data: the subgraph could not start the stream (e.g. CURSOR_EXPIRED); it completes next.
            if (event.data == null && event.errors?.length) {
              current = null;
              return fail(upstreamError(event.errors, serviceName));
            }
            const c = cursorOf(event as ExecutionResult);
            if (c !== null) {
              if (cursor !== null && c <= cursor) return; // already received before a re-subscription
              cursor = c;
            }
            // Each event continues the trace of the consumer span that raised it (lib/tracing.ts): its joins are part of it.
            const traceparent = (event as ExecutionResult).extensions?.traceparent;
            chain = chain.then(() =>
              continueTrace('gateway', `subscription event ${primary.serviceName}`, traceparent, { 'paygraph.subgraph': serviceName }, async () => {
                try {
                  stream.push(await sharedRest(sub, event as ExecutionResult));
                } catch (err) {
                  opts.logger.error(
                    { requestId: sub.requestId, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) },
                    'subscription event could not be joined',
                  );
                  stream.push({ errors: [appError('INTERNAL_SERVER_ERROR', 'A subscription event could not be completed.')] });
                }
              }),
            );
          },
          error: (err) => {
            if (closed || current?.unsubscribe !== unsubscribe) return;
            current = null;
            // The subgraph ended the subscription with GraphQL errors (a refusal, an expired cursor):
            // final, except a refused grant (e.g. the client library re-sent a spent one after a
            // normal close): that one is signed afresh, within the same retry budget.
            const refusedGrant = isGraphQLErrors(err) && err[0]!.extensions?.reason === GRANT_REFUSED;
            if (isGraphQLErrors(err) && !refusedGrant) return fail(upstreamError(err, serviceName));
            // The socket dropped, or could not be opened: re-subscribe, unless it keeps failing.
            if (!refusedGrant && (target.connects > connectsBefore || wasOpen)) failures = 0;
            failures += 1;
            if (failures > maxAttempts) return fail(upstreamError(err, serviceName));
            const wait = Math.min(UPSTREAM_RETRY_MAX_MS, UPSTREAM_RETRY_MIN_MS * 2 ** (failures - 1)) * (1 + Math.random() * 0.2);
            retry = setTimeout(() => void attempt(), wait);
          },
          complete: () => {
            if (closed || current?.unsubscribe !== unsubscribe) return;
            current = null;
            chain = chain.then(() => stream.end());
          },
        },
      );
      current = { upstream: target, unsubscribe };
    };
    void attempt();
    return {
      stream,
      end: (error) => fail(error),
    };
  }

  return {
    open: bridge,
    get active() {
      return bridges.size;
    },
    get live() {
      return [...bridges].filter((b) => b.live).length;
    },
    get upstreamSockets() {
      return pool.sockets;
    },
    closeAll() {
      for (const b of [...bridges]) b.close();
      void pool.closeAll();
    },
  };
}
