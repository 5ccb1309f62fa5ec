/**
 * The gateway: one node:http server for GraphQL over HTTP (/graphql) and over WebSocket (the same
 * URL), health, readiness and metrics, CORS (cors.ts) and, in development, the GraphiQL IDE (ide.ts). It builds, once, the fence, the hardening and the one
 * operation pipeline (pipeline.ts) both transports call; nothing listens until startGateway.
 */
import { createHash, createPublicKey } from 'node:crypto';
import http from 'node:http';
import type { TokenVerifierConfig } from '../lib/auth.js';
import type { SubgraphName } from '../lib/config.js';
import { HttpError } from '../lib/errors.js';
import { close, listen, readBody, sendGraphQLError, sendJson } from '../lib/http.js';
import { createLogger, type Logger } from '../lib/log.js';
import { ROOT_CONTEXT, SpanKind, withSpan } from '../lib/tracing.js';
import type { ServiceKeys } from '../lib/transport/keys.js';
import { internalAuditSink, type AuditSink } from '../fence/audit-sink.js';
import { createFence } from '../fence/fence.js';
import type { RefusalGuardOptions } from '../fence/refusal-guard.js';
import { AUDIT_PATH_PREFIX, auditRoutes } from './audit-routes.js';
import { createAuthenticator } from './context.js';
import { corsPolicy } from './cors.js';
import { createIde } from './ide.js';
import { createHardening } from './hardening.js';
import { DEFAULT_LIMITS, type LimitsConfig } from './limits.js';
import { createRateLimiter } from './rate-limit.js';
import type { PersistedQueryManifest, TrustedDocumentsMode } from './trusted-documents.js';
import { createPipeline, type OperationPipeline } from './pipeline.js';
import { Planner } from './planner.js';
import { readiness } from './readiness.js';
import { createRedisRefusalStore } from './refusal-store.js';
import { createBridge } from './subscription-bridge.js';
import { serveSubscriptions, type SubscriptionServer } from './subscription-server.js';
import type { WebAppHandler } from './web-app.js';

/** Largest request body the gateway reads (HTTP 413 beyond): far above any legitimate operation. */
export const GATEWAY_MAX_BODY_BYTES = 100_000;

export interface GatewayOptions {
  supergraphSdl: string;
  subgraphUrls: Readonly<Record<SubgraphName, string>>;
  /**
   * The gateway's keys (lib/transport/keys.ts): its own private key, which signs every subgraph
   * request, subscription and audit append. It verifies no service's signature, so it trusts none.
   */
  keys: ServiceKeys;
  /**
   * How client tokens are verified (lib/auth.ts): an HS256 secret, or an issuer's public key(s) or
   * JWKS URL, with which the gateway holds nothing that can mint a token it accepts.
   */
  tokenVerifier: TokenVerifierConfig;
  production: boolean;
  /** Where the data-use fence appends audit records; default: the accounts subgraph's /internal/audit. */
  audit?: AuditSink;
  /**
   * Bounds on refused attempts by unauthenticated callers, per client address (fence/refusal-guard.ts;
   * default 20 kinds per 10 s window, repeats coalesced). Tests shorten or widen them. Shared by
   * every gateway through rateLimitRedisUrl when it is set (refusal-store.ts).
   */
  refusals?: Omit<RefusalGuardOptions, 'store'>;
  /** Structured logger (pino); default: JSON to stdout. */
  logger?: Logger;
  /** Overrides of the request limits (gateway/limits.ts DEFAULT_LIMITS). */
  limits?: Partial<LimitsConfig>;
  /**
   * Trusted documents (trusted-documents.ts): the manifest (operations/manifest.json, built by
   * `npm run documents`) and whether only its operations run (`required`; default in production).
   * Default: an empty manifest (every operation is `unlisted` in metrics) and, outside production, any document.
   */
  trustedDocuments?: { mode?: TrustedDocumentsMode; manifest: PersistedQueryManifest };
  /**
   * Serve /metrics on this port only (PAYGRAPH_METRICS_PORT; 0: any free port), not on the
   * public one; undefined: on the public port, beside /graphql.
   */
  metricsPort?: number;
  /**
   * Redis shared by every gateway for the mutation rate limit (rate-limit.ts) and the refusal
   * guard's budget (refusal-store.ts); unset: each gateway counts in its own memory.
   */
  rateLimitRedisUrl?: string;
  /** Browser origins allowed to call the gateway (PAYGRAPH_CORS_ORIGINS, cors.ts); undefined: none in production, loopback origins otherwise. */
  corsOrigins?: readonly string[];
  /** Upstream reconnection attempts of a subscription before its client is told (tests shorten it). */
  upstreamRetryAttempts?: number;
  /** Subscriptions one user may hold at once on this gateway (PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER; default 10). */
  maxSubscriptionsPerUser?: number;
  /**
   * Benchmarks only (`npm run bench` measures the fence's cost side by side): build the gateway
   * without the fence's steps. Refused when production is set.
   */
  benchmarkWithoutFence?: boolean;
  /** The reference web client at /app and its development sign-in (gateway/web-app.ts); none: not served. */
  webApp?: WebAppHandler;
  port?: number;
  host?: string;
}

export interface Gateway {
  url: string;
  server: http.Server;
  pipeline: OperationPipeline;
  /** The URL of /metrics (on its own port when metricsPort was given). */
  metricsUrl: string;
  /** The graphql-ws subscription server. */
  subscriptions: SubscriptionServer;
  stop(): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  if (opts.keys.service !== 'gateway') throw new Error(`the gateway was started with the keys of ${opts.keys.service}`);
  const logger = opts.logger ?? createLogger('gateway');
  const trustedMode = opts.trustedDocuments?.mode ?? (opts.production ? 'required' : 'any');
  if (opts.production && trustedMode !== 'required')
    logger.warn('trusted documents are not required (PAYGRAPH_TRUSTED_DOCUMENTS=any): this production gateway executes any document');
  // The gateways of one deployment share one key pair: its fingerprint scopes their shared counters.
  const rateLimitScope = createHash('sha256')
    .update(createPublicKey(opts.keys.self).export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
  const hardening = createHardening({
    production: opts.production,
    logger,
    limits: opts.limits,
    rateLimitRedisUrl: opts.rateLimitRedisUrl,
    rateLimitScope,
    trustedDocuments: {
      mode: trustedMode,
      manifest: opts.trustedDocuments?.manifest ?? { format: 'apollo-persisted-query-manifest', version: 1, operations: [] },
    },
  });
  // The refusal guard's budget is shared through the same Redis as the mutation counters, when there is one.
  const refusalStore = opts.rateLimitRedisUrl ? createRedisRefusalStore({ redisUrl: opts.rateLimitRedisUrl, scope: rateLimitScope, logger }) : null;
  const fence = createFence({
    supergraphSdl: opts.supergraphSdl,
    audit: hardening.metrics.countAuditFailures(opts.audit ?? internalAuditSink(opts.subgraphUrls.accounts, opts.keys)),
    log: logger,
    refusals: { ...opts.refusals, ...(refusalStore ? { store: refusalStore } : {}) },
  });
  const planner = new Planner(opts.supergraphSdl);
  const auth = createAuthenticator(opts.tokenVerifier);
  const pipeline = createPipeline({ ...opts, logger, auth, fence, hardening, planner, withoutFence: opts.benchmarkWithoutFence });
  await pipeline.start();
  // The shared rate limit and refusal budget count in Redis from the first request when Redis answers at start.
  await Promise.all([hardening.rateLimiter.ready(), refusalStore?.ready()]);
  // The public transparency log (no token): relayed from the accounts service.
  const auditReads = createRateLimiter({
    limit: opts.limits?.auditReadsPerMinute ?? DEFAULT_LIMITS.auditReadsPerMinute,
    windowMs: 60_000,
    redisUrl: opts.rateLimitRedisUrl,
    scope: rateLimitScope,
    counter: 'audit-reads',
  });
  const audit = auditRoutes({ accountsUrls: opts.subgraphUrls.accounts, keys: opts.keys, logger, limiter: auditReads });

  const serveMetrics = async (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': hardening.metrics.registry.contentType });
    res.end(await hardening.metrics.registry.metrics());
  };
  const cors = corsPolicy(opts.corsOrigins, opts.production);
  // GraphiQL, served from this origin, in development only (ide.ts).
  const ide = createIde(!opts.production);
  const server = http.createServer((req, res) => {
    void (async () => {
      if (cors.handle(req, res)) return;
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (ide.handle(req, res, path)) return;
      if (path === '/health') return sendJson(res, 200, { status: 'ok' });
      if (path === '/ready') {
        const { unreachable, degraded } = await readiness(opts.subgraphUrls);
        return sendJson(res, unreachable.length ? 503 : 200, { status: unreachable.length ? 'unavailable' : 'ready', unreachable, degraded });
      }
      if (path === '/metrics' && opts.metricsPort === undefined) return serveMetrics(res);
      if (path.startsWith(AUDIT_PATH_PREFIX)) return audit(req, res);
      if (opts.webApp && (await opts.webApp(req, res, path))) return;
      if (path !== '/graphql') return sendJson(res, 404, { error: 'not found; GraphQL is served at /graphql' });
      // Every operation starts a trace of its own here (lib/tracing.ts); a client's traceparent is
      // not continued: the endpoint is public, and a trace's parent is the gateway's to choose.
      await withSpan('gateway', `${req.method ?? 'POST'} /graphql`, { kind: SpanKind.SERVER, parent: ROOT_CONTEXT }, async (span) => {
        await pipeline.http(req, res, await readBody(req, GATEWAY_MAX_BODY_BYTES));
        span.setAttribute('http.response.status_code', res.statusCode);
      });
    })().catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof HttpError) return sendGraphQLError(res, err);
      logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'request failed');
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  });
  const bridge = createBridge({
    subgraphUrls: opts.subgraphUrls,
    keys: opts.keys,
    planner,
    logger,
    upstreamRetryAttempts: opts.upstreamRetryAttempts,
  });
  const subscriptions = serveSubscriptions({
    server,
    pipeline,
    bridge,
    auth,
    production: opts.production,
    schema: planner.apiGraphQLSchema,
    maxSubscriptionsPerUser: opts.maxSubscriptionsPerUser,
  });
  hardening.metrics.trackSubscriptions(() => subscriptions.active);
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  // A metrics port of its own: only /metrics, never GraphQL (an operator firewalls it off the public network).
  const metricsServer =
    opts.metricsPort === undefined
      ? null
      : http.createServer((req, res) => {
          if ((req.url ?? '/').split('?')[0] !== '/metrics') return sendJson(res, 404, { error: 'not found; this port serves /metrics only' });
          serveMetrics(res).catch(() => res.end());
        });
  const metricsUrl = metricsServer ? `${await listen(metricsServer, opts.metricsPort!, opts.host)}/metrics` : url.replace(/\/graphql$/, '/metrics');
  return {
    url,
    metricsUrl,
    server,
    pipeline,
    subscriptions,
    async stop() {
      await subscriptions.dispose();
      if (metricsServer) await close(metricsServer);
      await close(server);
      // The fence (pipeline.stop) appends its refusal counts first; they need no Redis.
      await pipeline.stop();
      await Promise.all([hardening.rateLimiter.close(), refusalStore?.close(), auditReads.close()]);
    },
  };
}
