/**
 * The service every subgraph runs in: an HTTP server that accepts only gateway-signed requests
 * (and signed internal calls), runs the subgraph's fence plugin, and builds one context (with
 * one DataLoader set) per request.
 */
import { connectNonceStore } from '../lib/redis.js';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import type { Knex } from 'knex';
import type { SubgraphName } from '../lib/config.js';
import { createLogger, type Logger } from '../lib/log.js';
import { close, executeApollo, headerRecord, listen, readBody, sendGraphQLError, sendJson } from '../lib/http.js';
import { HttpError } from '../lib/errors.js';
import { REQUEST_ID_HEADER, SignatureVerifier } from '../lib/transport/signing.js';
import { subgraphFence } from '../fence/adapters/subgraph.js';
import { buildSchema, type ServiceEnv, type SubgraphContext, type SubgraphDefinition } from './definition.js';

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
  /** This subgraph's signing key (derived from the gateway secret). */
  key: Buffer;
  /** Key that internal routes of this subgraph verify (see lib/transport/internal-client.ts). */
  internalKey: Buffer;
  /** Peers and their internal keys, for workers and internal calls. */
  peers?: Partial<Record<SubgraphName, string>>;
  internalKeyFor?: (peer: SubgraphName) => Buffer;
  port?: number;
  host?: string;
  /** Structured logger; default: JSON to stdout, named after the subgraph. */
  logger?: Logger;
  /** Redis URL for cross-process fan-out; see ServiceEnv.redisUrl. */
  redisUrl?: string;
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

export async function startSubgraph<L, S>(def: SubgraphDefinition<L, S>, opts: SubgraphServiceOptions): Promise<SubgraphService<S>> {
  const log = opts.logger ?? createLogger(def.name);
  const schema = buildSchema(def as SubgraphDefinition);
  const apollo = new ApolloServer<SubgraphContext<L, S>>({
    schema,
    includeStacktraceInErrorResponses: false,
    // Browsers never reach a subgraph: every request must carry the gateway's HMAC signature
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
  // Several processes of this subgraph (REDIS_URL): replay protection shared through Redis.
  const nonces = opts.redisUrl ? connectNonceStore(opts.redisUrl, def.name, { logger: log }) : null;
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
  const verifier = new SignatureVerifier(opts.key, shared(def.name));
  const internalVerifier = new SignatureVerifier(opts.internalKey, shared(`${def.name}/internal`));
  const env: ServiceEnv = {
    db: opts.db,
    peers: opts.peers ?? {},
    internalKeyFor:
      opts.internalKeyFor ??
      (() => {
        throw new Error(`${def.name} was started without internal keys for its peers`);
      }),
    verifyGatewaySignature: (fields, body) => verifier.check(fields, body),
    redisUrl: opts.redisUrl,
    logger: log,
  };
  const services = (def.createServices ? def.createServices(env) : undefined) as S;

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
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
    });
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return sendJson(res, 200, { status: 'ok', subgraph: def.name });
      if (path === '/ready') {
        try {
          await opts.db.raw('select 1');
          return sendJson(res, 200, { status: 'ready', subgraph: def.name });
        } catch {
          return sendJson(res, 503, { status: 'unavailable', subgraph: def.name, reason: 'database unreachable' });
        }
      }
      const internal = path?.startsWith('/internal/') ? def.internalRoutes?.[path.slice('/internal/'.length)] : undefined;
      if (path !== '/graphql' && !internal) return sendJson(res, 404, { error: 'not found' });
      const body = await readBody(req);
      const headers = headerRecord(req);
      if (internal) {
        if (req.method !== 'POST') throw new HttpError(405, 'internal routes take POST');
        const verdict = await internalVerifier.check(headers, body);
        if (!verdict.ok) throw new HttpError(401, `internal request not signed (${verdict.reason})`, 'UNAUTHENTICATED');
        let parsed: unknown;
        try {
          parsed = body.length ? JSON.parse(body.toString('utf8')) : {};
        } catch {
          throw new HttpError(400, 'internal request body is not JSON');
        }
        return sendJson(res, 200, await internal(env, parsed, headers[REQUEST_ID_HEADER] ?? randomUUID(), services));
      }
      const verdict = await verifier.check(headers, body);
      if (!verdict.ok) throw new HttpError(401, `request not signed by the gateway (${verdict.reason})`, 'UNAUTHENTICATED');
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
  });
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
