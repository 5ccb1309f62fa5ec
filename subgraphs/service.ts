/**
 * The service every subgraph runs in: an HTTP server that accepts only gateway-signed requests
 * (and internal calls signed by the services each internal route accepts), runs the subgraph's
 * fence plugin, and builds one context (with one DataLoader set) per request.
 */
import { connectNonceStore, usesRedis } from '../lib/redis.js';
import http from 'node:http';
import { Counter, Registry } from 'prom-client';
import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import type { Knex } from 'knex';
import type { ServiceName, SubgraphName } from '../lib/config.js';
import { createLogger, type Logger } from '../lib/log.js';
import { traceQueries } from '../lib/db.js';
import { context, serverSpanContext } from '../lib/tracing.js';
import { close, executeApollo, headerRecord, listen, readBody, sendGraphQLError, sendJson } from '../lib/http.js';
import { HttpError } from '../lib/errors.js';
import type { ServiceKeys } from '../lib/transport/keys.js';
import { ReplayGuard } from '../lib/transport/replay.js';
import { NONCE_MEMORY_MS, REQUEST_ID_HEADER, SignatureVerifier, WS_SIGNED_METHOD, WS_SIGNED_PATH, type VerifyResult } from '../lib/transport/signing.js';
import { subgraphFence } from '../fence/adapters/subgraph.js';
import { buildSchema, GRAPH_CALLERS, signersTrustedBy, type ServiceEnv, type SubgraphContext, type SubgraphDefinition } from './definition.js';

export interface SubgraphService<S = unknown> {
  name: SubgraphName;
  url: string;
  server: http.Server;
  /** The running service's collaborators (SubgraphDefinition.createServices), for its owner. */
  services: S;
  stop(): Promise<void>;
}

export interface SubgraphServiceOptions {
  db: Knex;
  /**
   * This subgraph's keys (lib/transport/keys.ts): its own private key, for its internal calls, and
   * the public keys of the services it accepts: the gateway, and its internal routes' callers
   * (definition.ts signersTrustedBy). Nothing else: no other service's private key.
   */
  keys: ServiceKeys;
  /** Peers' base URLs, for workers and internal calls. */
  peers?: Partial<Record<SubgraphName, string>>;
  port?: number;
  host?: string;
  /** Structured logger; default: JSON to stdout, named after the subgraph. */
  logger?: Logger;
  /**
   * Redis URL for cross-process fan-out; see ServiceEnv.redisUrl. Its own ACL user's
   * (PAYGRAPH_<NAME>_REDIS_URL) in a least-privilege set-up. Ignored for ads, which never uses
   * Redis (lib/config.ts REDIS_SERVICES): it keeps its replay check in-process.
   */
  redisUrl?: string;
  /** The accounts service's transparency-log origin (ServiceEnv.auditOrigin); ignored by the others. */
  auditOrigin?: string;
}

/** Logs resolver faults (errors without a client-facing code) with the request id. */
function faultLogPlugin<C extends { requestId: string }>(log: Logger): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue }) {
          for (const e of errors) {
            const code = e.extensions?.code;
            if (code === undefined || code === 'INTERNAL_SERVER_ERROR') {
              log.error({ requestId: contextValue.requestId, path: e.path, err: { message: e.message, stack: e.originalError?.stack } }, 'resolver fault');
            }
          }
        },
      };
    },
  };
}

/**
 * The verifiers of one subgraph, all sharing its replay memory: GraphQL (HTTP and graphql-ws)
 * accepts the gateway's signature, each internal route the signatures of its own callers. Fails
 * at start when the keys are not this subgraph's or lack a public key one of them needs.
 */
function verifiersFor<L, S>(
  def: SubgraphDefinition<L, S>,
  keys: ServiceKeys,
  replay: ReplayGuard,
): { graph: SignatureVerifier; internal: Map<string, SignatureVerifier> } {
  if (keys.service !== def.name) throw new Error(`${def.name} was started with the keys of ${keys.service}`);
  const missing = signersTrustedBy(def).filter((s) => !keys.trust[s]);
  if (missing.length) throw new Error(`${def.name} was started without the public key of ${missing.join(', ')}, whose signatures it verifies`);
  const accepting = (callers: readonly ServiceName[]) =>
    new SignatureVerifier({ service: def.name, accept: Object.fromEntries(callers.map((c) => [c, keys.trust[c]!])), replay });
  const internal = new Map(Object.entries(def.internalRoutes ?? {}).map(([route, endpoint]) => [route, accepting(endpoint.callers)]));
  return { graph: accepting(GRAPH_CALLERS), internal };
}

/** The refusal of an internal call: 403 for a service the route does not accept, 401 for anything not validly signed. */
function refusal(verdict: Extract<VerifyResult, { ok: false }>, what: string): HttpError {
  return verdict.status === 403
    ? new HttpError(403, `${what} refused: ${verdict.reason}`, 'FORBIDDEN')
    : new HttpError(401, `${what} refused: not signed by a service it accepts (${verdict.reason})`, 'UNAUTHENTICATED');
}

export async function startSubgraph<L, S>(def: SubgraphDefinition<L, S>, opts: SubgraphServiceOptions): Promise<SubgraphService<S>> {
  const log = opts.logger ?? createLogger(def.name);
  const schema = buildSchema(def as SubgraphDefinition);
  const apollo = new ApolloServer<SubgraphContext<L, S>>({
    schema,
    includeStacktraceInErrorResponses: false,
    // Browsers never reach a subgraph: every request must carry the gateway's signature
    // (checked before Apollo sees it), which is stronger than CSRF's preflight-forcing headers,
    // and the check would parse each request's content type for nothing.
    csrfPrevention: false,
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginInlineTraceDisabled(),
      // No @cacheControl hints exist and responses are per caller: without this, Apollo's default
      // cache-control plugin wraps every resolver (willResolveField) to compute a policy of max-age 0.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginLandingPageDisabled(),
      faultLogPlugin<SubgraphContext<L, S>>(log),
      // Fence layer 4: a payments-zone subgraph refuses its payment-only fields to a non-payments caller.
      subgraphFence(def.name, def.typeDefs, schema).plugin<SubgraphContext<L, S>>(),
    ],
  });
  await apollo.start();
  const redisUrl = usesRedis(def.name) ? opts.redisUrl : undefined;
  // Several processes of this subgraph (REDIS_URL): replay protection shared through Redis.
  const nonces = redisUrl ? connectNonceStore(redisUrl, def.name, { logger: log }) : null;
  let warned = 0;
  const shared = (scope: string) =>
    nonces
      ? {
          nonces,
          scope,
          onUnavailable: (err: unknown) =>
            void (
              warned++ % 100 === 0 &&
              log.warn({ err: err instanceof Error ? err.message : String(err) }, "shared replay check unavailable (Redis); using this process's own")
            ),
        }
      : undefined;
  const { graph, internal: internalVerifiers } = verifiersFor(def, opts.keys, new ReplayGuard(NONCE_MEMORY_MS, shared(def.name)));
  const env: ServiceEnv = {
    db: opts.db,
    peers: opts.peers ?? {},
    signer: { service: opts.keys.service, self: opts.keys.self },
    verifyGatewayConnection: (fields, content) => graph.check({ method: WS_SIGNED_METHOD, path: WS_SIGNED_PATH, headers: fields, body: content }),
    redisUrl,
    logger: log,
    auditOrigin: opts.auditOrigin,
  };
  const services = (def.createServices ? def.createServices(env) : undefined) as S;
  // Prometheus metrics at /metrics (subgraph ports are internal: only the gateways go behind the load balancer).
  const registry = new Registry();
  const signatureFailures = new Counter({
    name: 'paygraph_subgraph_signature_failures_total',
    help: 'Requests this service refused as unsigned, badly signed, replayed or signed by a service the route does not accept, by route.',
    labelNames: ['service', 'route'] as const,
    registers: [registry],
  });
  def.metrics?.(registry, env, services);

  // SQL statements run for a traced request become its spans (lib/db.ts).
  traceQueries(opts.db, def.name);

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.hrtime.bigint();
    res.on(
      'finish',
      context.bind(context.active(), () => {
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/health' || path === '/ready') return;
        const entry = {
          requestId: req.headers[REQUEST_ID_HEADER] ?? null,
          path,
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        };
        // Service-to-service polling (e.g. the alerts consumer's feed) would flood info: debug unless it failed.
        if (path?.startsWith('/internal/') && res.statusCode < 400) log.debug(entry, 'request');
        else log.info(entry, 'request');
      }),
    );
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path === '/health') return sendJson(res, 200, { status: 'ok', subgraph: def.name });
      if (path === '/ready') {
        try {
          await opts.db.raw('select 1');
          return sendJson(res, 200, { status: 'ready', subgraph: def.name });
        } catch {
          return sendJson(res, 503, { status: 'unavailable', subgraph: def.name, reason: 'database unreachable' });
        }
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': registry.contentType });
        return res.end(await registry.metrics());
      }
      const route = path.startsWith('/internal/') ? path.slice('/internal/'.length) : undefined;
      const internal = route !== undefined && Object.hasOwn(def.internalRoutes ?? {}, route) ? def.internalRoutes![route] : undefined;
      if (path !== '/graphql' && !internal) return sendJson(res, 404, { error: 'not found' });
      // POST only, for GraphQL too: a signature covers the method and path but not the query
      // string, so a signed GET could carry any query. (The gateway only ever POSTs.)
      if (req.method !== 'POST') throw new HttpError(405, `${path} takes POST`, 'METHOD_NOT_ALLOWED');
      const body = await readBody(req);
      const headers = headerRecord(req);
      if (internal) {
        const verdict = await internalVerifiers.get(route!)!.check({ method: req.method, path, headers, body });
        if (!verdict.ok) {
          signatureFailures.inc({ service: def.name, route: route! });
          throw refusal(verdict, `internal route ${path}`);
        }
        let parsed: unknown;
        try {
          parsed = body.length ? JSON.parse(body.toString('utf8')) : {};
        } catch {
          throw new HttpError(400, 'internal request body is not JSON');
        }
        return sendJson(res, 200, await internal.handle(env, parsed, headers[REQUEST_ID_HEADER] ?? randomUUID(), services));
      }
      const verdict = await graph.check({ method: req.method, path, headers, body });
      if (!verdict.ok) {
        signatureFailures.inc({ service: def.name, route: 'graphql' });
        throw new HttpError(401, `request not signed by the gateway (${verdict.reason})`, 'UNAUTHENTICATED');
      }
      const caller = verdict.caller;
      const requestId = headers[REQUEST_ID_HEADER] ?? randomUUID();
      await executeApollo(apollo, req, res, body, async () => ({
        db: opts.db,
        caller,
        requestId,
        loaders: def.createLoaders(opts.db, caller, services),
        services,
      }));
    })().catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof HttpError) return sendGraphQLError(res, err);
      log.error(
        { requestId: req.headers[REQUEST_ID_HEADER] ?? null, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) },
        'request failed',
      );
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  };
  // A request carrying trace context (the gateway's fetches, internal calls made inside a trace)
  // is served in a server span continuing it, so its SQL and its log lines belong to the trace
  // (lib/tracing.ts serverSpanContext); untraced ones (the alerts consumer's long polls) open none.
  const server = http.createServer((req, res) => context.with(serverSpanContext(def.name, req, res), () => handle(req, res)));
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  const stopWorkers = def.startWorkers ? await def.startWorkers(env, server, services) : async () => undefined;
  return {
    name: def.name,
    url,
    server,
    services,
    async stop() {
      await stopWorkers();
      await close(server);
      await apollo.stop();
      await nonces?.close();
    },
  };
}
