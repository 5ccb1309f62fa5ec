/**
 * The runtime every subgraph shares: a schema built with buildSubgraphSchema (no port opened),
 * and an HTTP service that accepts only gateway-signed requests and builds one context (with one
 * DataLoader set) per request.
 */
import fs from 'node:fs';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Knex } from 'knex';
import type { Caller } from './auth.js';
import type { SubgraphName } from './config.js';
import type { Migration } from './db.js';
import { close, executeApollo, headerRecord, HttpError, listen, readBody, sendGraphQLError, sendJson } from './http.js';
import { REQUEST_ID_HEADER, SignatureVerifier } from './signing.js';
import type { Fixture } from '../seeds/fixture.js';

export interface SubgraphContext<L> {
  db: Knex;
  caller: Caller;
  loaders: L;
  requestId: string;
}

export interface SubgraphDefinition<L = unknown> {
  name: SubgraphName;
  typeDefs: DocumentNode;
  /** Resolver map in buildSubgraphSchema's shape (including `__resolveReference`). */
  resolvers: Record<string, unknown>;
  migrations: readonly Migration[];
  /** Inserts this subgraph's share of the fixture into its own, freshly migrated, empty tables. */
  seed(db: Knex, fixture: Fixture): Promise<void>;
  createLoaders(db: Knex, caller: Caller): L;
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
  port?: number;
  host?: string;
}

export async function startSubgraph<L>(def: SubgraphDefinition<L>, opts: SubgraphServiceOptions): Promise<SubgraphService> {
  const schema = buildSchema(def as SubgraphDefinition);
  const apollo = new ApolloServer<SubgraphContext<L>>({
    schema,
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginInlineTraceDisabled(), ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();
  const verifier = new SignatureVerifier(opts.key);

  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return sendJson(res, 200, { status: 'ok', subgraph: def.name });
      if (path !== '/graphql') return sendJson(res, 404, { error: 'not found' });
      const body = await readBody(req);
      const headers = headerRecord(req);
      const verdict = verifier.verify(headers, body);
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
      console.error(`[${def.name}] request failed`, err);
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  });
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  return {
    name: def.name,
    url,
    server,
    async stop() {
      await close(server);
      await apollo.stop();
    },
  };
}
