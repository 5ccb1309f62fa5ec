/**
 * The gateway: Apollo Server with @apollo/gateway over the committed supergraph. Builds
 * everything without opening a port until `start` is called.
 */
import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { parseUrlList, type SubgraphName } from '../lib/config.js';
import { close, executeApollo, headerRecord, listen, readBody, sendGraphQLError, sendJson } from '../lib/http.js';
import { HttpError } from '../lib/errors.js';
import { deriveSubgraphKey, REQUEST_ID_HEADER } from '../lib/transport/signing.js';
import { deriveInternalKey } from '../lib/transport/internal-client.js';
import { createFence, fencePlugin, internalAuditSink, type AuditSink, type Fence } from '../fence/fence.js';
import { callerFromHeaders, newRequestId, type GatewayContext } from './context.js';
import { SignedDataSource } from './datasource.js';
import { rejectHttpSubscriptions, serveSubscriptions, type SubscriptionServer } from './subscriptions.js';
import { createHardening, type Hardening } from './hardening.js';
import type { LimitsConfig } from './limits.js';
import { createLogger, type Logger } from '../lib/log.js';

/** Largest request body the gateway reads (HTTP 413 beyond): far above any legitimate operation. */
export const GATEWAY_MAX_BODY_BYTES = 100_000;

export interface GatewayOptions {
  supergraphSdl: string;
  subgraphUrls: Readonly<Record<SubgraphName, string>>;
  gatewaySecret: string;
  jwtSecret: string;
  production: boolean;
  /** Where the data-use fence appends audit records; default: the accounts subgraph's /internal/audit. */
  audit?: AuditSink;
  /** Structured logger (pino); default: JSON to stdout. */
  logger?: Logger;
  /** Overrides of the request limits (gateway/limits.ts DEFAULT_LIMITS). */
  limits?: Partial<LimitsConfig>;
  /**
   * Benchmarks only (`npm run bench` measures the fence's cost side by side): build the gateway
   * without the operation and query-plan checks. Refused when production is set.
   */
  benchmarkWithoutFence?: boolean;
}

export interface Gateway {
  url: string;
  server: http.Server;
  apollo: ApolloServer<GatewayContext>;
  /** The graphql-ws subscription bridge (gateway/subscriptions.ts). */
  subscriptions: SubscriptionServer;
  stop(): Promise<void>;
}

/** The Apollo gateway server; `fence` is the data-use fence it enforces (shared with the subscription bridge). */
function buildGateway(opts: GatewayOptions, hardening: Hardening, fence: Fence): ApolloServer<GatewayContext> {
  if (opts.benchmarkWithoutFence && opts.production) throw new Error('benchmarkWithoutFence is refused in production');
  const withoutFence = opts.benchmarkWithoutFence === true;
  const gateway = new ApolloGateway({
    supergraphSdl: opts.supergraphSdl,
    buildService: ({ name }) => {
      const url = opts.subgraphUrls[name as SubgraphName];
      if (!url) throw new Error(`supergraph names a subgraph "${name}" that paygraph does not know`);
      return new SignedDataSource(url, deriveSubgraphKey(opts.gatewaySecret, name), name);
    },
    __exposeQueryPlanExperimental: false,
    ...(withoutFence ? {} : { experimental_didResolveQueryPlan: fence.didResolveQueryPlan }),
  });
  return new ApolloServer<GatewayContext>({
    gateway,
    includeStacktraceInErrorResponses: false,
    // The process owner (scripts/start.ts, tests) decides when to stop, draining HTTP first.
    stopOnTerminationSignals: false,
    introspection: true,
    // No "Did you mean ...?" hints in validation errors: they would reveal payment-only field names.
    hideSchemaDetailsFromClientErrors: true,
    validationRules: hardening.validationRules,
    formatError: hardening.formatError,
    plugins: [...(withoutFence ? [] : [fencePlugin(fence)]), rejectHttpSubscriptions<GatewayContext>(), ...hardening.plugins, ...(opts.production ? [ApolloServerPluginLandingPageDisabled()] : [])],
  });
}

async function healthy(graphqlUrl: string): Promise<boolean> {
  try {
    const res = await fetch(graphqlUrl.replace(/\/graphql$/, '/health'), { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Readiness over every subgraph's processes (a URL may list several, comma-separated): a subgraph
 * is `unreachable` when none of its processes answers /health within a second (the gateway is not
 * ready); a single process that does not while another does is listed as `degraded` (the data
 * sources fail over to the others).
 */
export async function readiness(subgraphUrls: Readonly<Record<SubgraphName, string>>): Promise<{ unreachable: string[]; degraded: string[] }> {
  const unreachable: string[] = [];
  const degraded: string[] = [];
  await Promise.all(
    Object.entries(subgraphUrls).map(async ([name, list]) => {
      const urls = parseUrlList(list);
      const up = await Promise.all(urls.map(healthy));
      if (!up.some(Boolean)) unreachable.push(name);
      else urls.forEach((u, i) => (up[i] ? undefined : degraded.push(`${name} ${u}`)));
    }),
  );
  return { unreachable: unreachable.sort(), degraded: degraded.sort() };
}

export async function startGateway(opts: GatewayOptions & { port?: number; host?: string }): Promise<Gateway> {
  const logger = opts.logger ?? createLogger('gateway');
  const hardening = createHardening({ production: opts.production, logger, limits: opts.limits });
  // One data-use fence (gateway/fence.ts) for HTTP operations and subscriptions: one policy, one
  // check cache, one audit group commit. Operation check + audit run in the plugin, the query-plan
  // check in the gateway's hook.
  const fence = createFence({
    supergraphSdl: opts.supergraphSdl,
    audit: opts.audit ?? internalAuditSink(opts.subgraphUrls.accounts, deriveInternalKey(opts.gatewaySecret, 'accounts')),
    log: { error: (message, detail) => logger.error({ fence: detail }, message) },
  });
  const apollo = buildGateway({ ...opts, logger }, hardening, fence);
  await apollo.start();
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
      if (path !== '/graphql') return sendJson(res, 404, { error: 'not found; GraphQL is served at /graphql' });
      const body = await readBody(req, GATEWAY_MAX_BODY_BYTES);
      const headers = headerRecord(req);
      const requestId = newRequestId(headers[REQUEST_ID_HEADER]);
      res.setHeader(REQUEST_ID_HEADER, requestId);
      await executeApollo(apollo, req, res, body, async () => ({
        caller: await callerFromHeaders(opts.jwtSecret, headers.authorization, headers['apollographql-client-name']),
        requestId,
      }), hardening.inspect);
    })().catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof HttpError) return sendGraphQLError(res, err);
      logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'request failed');
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  });
  // Subscriptions: graphql-ws on the same server and /graphql URL, bridged to the owning subgraph.
  const subscriptions = serveSubscriptions({ ...opts, fence, server, validationRules: hardening.validationRules });
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  return {
    url,
    server,
    apollo,
    subscriptions,
    async stop() {
      await subscriptions.dispose();
      await close(server);
      await apollo.stop();
    },
  };
}
