/**
 * The runtime every subgraph shares: a schema built with buildSubgraphSchema (no port opened),
 * and an HTTP service that accepts only gateway-signed requests and builds one context (with one
 * DataLoader set) per request.
 */
import { connectNonceStore } from './redis.js';
import fs from 'node:fs';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Knex } from 'knex';
import type { Caller } from './auth.js';
import type { SubgraphName } from './config.js';
import type { Migration } from './db.js';
import { createLogger, type Logger } from './log.js';
import { close, executeApollo, headerRecord, listen, readBody, sendGraphQLError, sendJson } from './http.js';
import { HttpError } from './errors.js';
import { REQUEST_ID_HEADER, SignatureVerifier, type VerifyResult } from './signing.js';
import { subgraphFencePlugin } from './fence.js';
import type { Fixture } from '../seeds/fixture.js';

export interface SubgraphContext<L> {
  db: Knex;
  caller: Caller;
  loaders: L;
  requestId: string;
}

/** What a subgraph's internal routes and background workers get. */
export interface ServiceEnv {
  db: Knex;
  /** URLs of the other subgraphs' services (base URL, without /graphql), by name. */
  peers: Readonly<Partial<Record<SubgraphName, string>>>;
  /** Key to sign internal (service-to-service) requests to a peer; see lib/internal.ts. */
  internalKeyFor(peer: SubgraphName): Buffer;
  /**
   * Verifies a gateway signature made with this subgraph's key over `body`, with the signature
   * fields (lib/signing.ts header names) given as a record: e.g. the graphql-ws connection_init
   * payload of the gateway's subscription bridge (see wsConnectionInitBody). Same replay
   * protection as the HTTP endpoint.
   */
  verifyGatewaySignature(fields: Record<string, string | undefined>, body: string | Buffer): Promise<VerifyResult>;
  /** Redis URL for cross-process fan-out (scale-out); undefined: single process, in-process only. */
  redisUrl: string | undefined;
  /** This service's logger (pino): workers and routes log through it, never through console. */
  logger: Logger;
}

/**
 * The bytes the gateway signs (with the subgraph's key) in the connection_init payload of a
 * graphql-ws connection to a subgraph; `resumeAfter` and `since` are covered by the signature.
 */
export function wsConnectionInitBody(resumeAfter: number | null, since: string | null = null): string {
  return `graphql-ws/connection_init\nresumeAfter=${resumeAfter ?? ''}\nsince=${since ?? ''}`;
}

/** A signed service-to-service endpoint, served at POST /internal/<name>. */
export type InternalRoute = (env: ServiceEnv, body: unknown, requestId: string) => Promise<unknown>;

export interface SubgraphDefinition<L = unknown> {
  name: SubgraphName;
  typeDefs: DocumentNode;
  /** Resolver map in buildSubgraphSchema's shape (including `__resolveReference`). */
  resolvers: Record<string, unknown>;
  migrations: readonly Migration[];
  /** Inserts this subgraph's share of the fixture into its own, freshly migrated, empty tables. */
  seed(db: Knex, fixture: Fixture): Promise<void>;
  /**
   * A table the seed always fills (none when the seed inserts nothing): a database migrated before
   * seeds were marked (lib/stack.ts seedOnce) counts as seeded when it has rows.
   */
  seededTable: string | null;
  createLoaders(db: Knex, caller: Caller): L;
  /** Signed internal endpoints (events feed, commands), never part of the graph. */
  internalRoutes?: Readonly<Record<string, InternalRoute>>;
  /** Background work (e.g. an event consumer), started after the server listens; returns its stopper. */
  startWorkers?(env: ServiceEnv, server: http.Server): Promise<() => Promise<void>>;
}

export function loadSdl(url: URL): DocumentNode {
  return parse(fs.readFileSync(url, 'utf8'));
}

export function buildSchema(def: SubgraphDefinition): GraphQLSchema {
  return buildSubgraphSchema({ typeDefs: def.typeDefs, resolvers: def.resolvers as never });
}

export interface SubgraphService {
  name: SubgraphName;
  url: string;
  server: http.Server;
  stop(): Promise<void>;
}

export interface SubgraphServiceOptions {
  db: Knex;
  /** This subgraph's signing key (derived from the gateway secret). */
  key: Buffer;
  /** Key that internal routes of this subgraph verify (see lib/internal.ts). */
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

export async function startSubgraph<L>(def: SubgraphDefinition<L>, opts: SubgraphServiceOptions): Promise<SubgraphService> {
  const log = opts.logger ?? createLogger(def.name);
  const schema = buildSchema(def as SubgraphDefinition);
  const apollo = new ApolloServer<SubgraphContext<L>>({
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
      faultLogPlugin<SubgraphContext<L>>(log),
      // Fence layer 4: a payments-zone subgraph refuses its payment-only fields to a non-payments caller.
      subgraphFencePlugin<SubgraphContext<L>>(def.name, def.typeDefs, schema),
    ],
  });
  await apollo.start();
  // Several processes of this subgraph (REDIS_URL): replay protection shared through Redis.
  const nonces = opts.redisUrl ? connectNonceStore(opts.redisUrl, def.name) : null;
  let warned = 0;
  const shared = (scope: string) =>
    nonces ? { nonces, scope, onUnavailable: (err: unknown) => void (warned++ % 100 === 0 && log.warn({ err: err instanceof Error ? err.message : String(err) }, 'shared replay check unavailable (Redis); using this process\'s own')) } : undefined;
  const verifier = new SignatureVerifier(opts.key, shared(def.name));
  const internalVerifier = new SignatureVerifier(opts.internalKey, shared(`${def.name}/internal`));
  const env: ServiceEnv = {
    db: opts.db,
    peers: opts.peers ?? {},
    internalKeyFor: opts.internalKeyFor ?? (() => {
      throw new Error(`${def.name} was started without internal keys for its peers`);
    }),
    verifyGatewaySignature: (fields, body) => verifier.check(fields, body),
    redisUrl: opts.redisUrl,
    logger: log,
  };

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health' || path === '/ready') return;
      const entry = { requestId: req.headers[REQUEST_ID_HEADER] ?? null, path, status: res.statusCode, durationMs: Number(process.hrtime.bigint() - started) / 1e6 };
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
        return sendJson(res, 200, await internal(env, parsed, headers[REQUEST_ID_HEADER] ?? randomUUID()));
      }
      const verdict = await verifier.check(headers, body);
      if (!verdict.ok) throw new HttpError(401, `request not signed by the gateway (${verdict.reason})`, 'UNAUTHENTICATED');
      const caller = verdict.caller;
      const requestId = headers[REQUEST_ID_HEADER] ?? randomUUID();
      await executeApollo(apollo, req, res, body, async () => ({
        db: opts.db,
        caller,
        requestId,
        loaders: def.createLoaders(opts.db, caller),
      }));
    })().catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof HttpError) return sendGraphQLError(res, err);
      log.error({ requestId: req.headers[REQUEST_ID_HEADER] ?? null, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'request failed');
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  });
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  const stopWorkers = def.startWorkers ? await def.startWorkers(env, server) : async () => undefined;
  return {
    name: def.name,
    url,
    server,
    async stop() {
      await stopWorkers();
      await close(server);
      await apollo.stop();
      await nonces?.close();
    },
  };
}
