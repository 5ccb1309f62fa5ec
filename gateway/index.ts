/**
 * The gateway: one node:http server for GraphQL over HTTP (/graphql) and over WebSocket (the same
 * URL), health, readiness and metrics. It builds, once, the fence, the hardening and the one
 * operation pipeline (pipeline.ts) both transports call; nothing listens until startGateway.
 */
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
import { createHardening } from './hardening.js';
import type { LimitsConfig } from './limits.js';
import { createPipeline, type OperationPipeline } from './pipeline.js';
import { Planner } from './planner.js';
import { readiness } from './readiness.js';
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
   * default 20 kinds per 10 s window, repeats coalesced). Tests shorten or widen them.
   */
  refusals?: RefusalGuardOptions;
  /** Structured logger (pino); default: JSON to stdout. */
  logger?: Logger;
  /** Overrides of the request limits (gateway/limits.ts DEFAULT_LIMITS). */
  limits?: Partial<LimitsConfig>;
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
  /** The graphql-ws subscription server. */
  subscriptions: SubscriptionServer;
  stop(): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  if (opts.keys.service !== 'gateway') throw new Error(`the gateway was started with the keys of ${opts.keys.service}`);
  const logger = opts.logger ?? createLogger('gateway');
  const hardening = createHardening({ production: opts.production, logger, limits: opts.limits });
  const fence = createFence({
    supergraphSdl: opts.supergraphSdl,
    audit: opts.audit ?? internalAuditSink(opts.subgraphUrls.accounts, opts.keys),
    log: logger,
    refusals: opts.refusals,
  });
  const planner = new Planner(opts.supergraphSdl);
  const auth = createAuthenticator(opts.tokenVerifier);
  const pipeline = createPipeline({ ...opts, logger, auth, fence, hardening, planner, withoutFence: opts.benchmarkWithoutFence });
  await pipeline.start();
  // The public transparency log (no token): relayed from the accounts service.
  const audit = auditRoutes({ accountsUrls: opts.subgraphUrls.accounts, keys: opts.keys, logger });

  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return sendJson(res, 200, { status: 'ok' });
      if (path === '/ready') {
        const { unreachable, degraded } = await readiness(opts.subgraphUrls);
        return sendJson(res, unreachable.length ? 503 : 200, { status: unreachable.length ? 'unavailable' : 'ready', unreachable, degraded });
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': hardening.metrics.registry.contentType });
        return res.end(await hardening.metrics.registry.metrics());
      }
      if (path?.startsWith(AUDIT_PATH_PREFIX)) return audit(req, res);
      if (opts.webApp && (await opts.webApp(req, res, path!))) return;
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
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  return {
    url,
    server,
    pipeline,
    subscriptions,
    async stop() {
      await subscriptions.dispose();
      await close(server);
      await pipeline.stop();
    },
  };
}
