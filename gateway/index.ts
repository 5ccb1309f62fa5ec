/**
 * The gateway: Apollo Server with @apollo/gateway over the committed supergraph. Builds
 * everything without opening a port until `start` is called.
 */
import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { SubgraphName } from '../lib/config.js';
import { close, executeApollo, headerRecord, HttpError, listen, readBody, sendGraphQLError, sendJson } from '../lib/http.js';
import { deriveSubgraphKey, REQUEST_ID_HEADER } from '../lib/signing.js';
import { callerFromHeaders, newRequestId, type GatewayContext } from './context.js';
import { SignedDataSource } from './datasource.js';

export interface GatewayOptions {
  supergraphSdl: string;
  subgraphUrls: Readonly<Record<SubgraphName, string>>;
  gatewaySecret: string;
  jwtSecret: string;
  production: boolean;
}

export interface Gateway {
  url: string;
  server: http.Server;
  apollo: ApolloServer<GatewayContext>;
  stop(): Promise<void>;
}

export function buildGateway(opts: GatewayOptions): ApolloServer<GatewayContext> {
  const gateway = new ApolloGateway({
    supergraphSdl: opts.supergraphSdl,
    buildService: ({ name }) => {
      const url = opts.subgraphUrls[name as SubgraphName];
      if (!url) throw new Error(`supergraph names a subgraph "${name}" that paygraph does not know`);
      return new SignedDataSource(url, deriveSubgraphKey(opts.gatewaySecret, name));
    },
    __exposeQueryPlanExperimental: false,
  });
  return new ApolloServer<GatewayContext>({
    gateway,
    includeStacktraceInErrorResponses: false,
    introspection: true,
    plugins: opts.production ? [ApolloServerPluginLandingPageDisabled()] : [],
  });
}

export async function startGateway(opts: GatewayOptions & { port?: number; host?: string }): Promise<Gateway> {
  const apollo = buildGateway(opts);
  await apollo.start();
  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return sendJson(res, 200, { status: 'ok' });
      if (path !== '/graphql') return sendJson(res, 404, { error: 'not found; GraphQL is served at /graphql' });
      const body = await readBody(req);
      const headers = headerRecord(req);
      const requestId = newRequestId(headers[REQUEST_ID_HEADER]);
      res.setHeader(REQUEST_ID_HEADER, requestId);
      await executeApollo(apollo, req, res, body, async () => ({
        caller: await callerFromHeaders(opts.jwtSecret, headers.authorization, headers['apollographql-client-name']),
        requestId,
      }));
    })().catch((err: unknown) => {
      if (res.headersSent) return res.end();
      if (err instanceof HttpError) return sendGraphQLError(res, err);
      console.error('[gateway] request failed', err);
      sendGraphQLError(res, new HttpError(500, 'internal error', 'INTERNAL_SERVER_ERROR'));
    });
  });
  const url = `${await listen(server, opts.port ?? 0, opts.host)}/graphql`;
  return {
    url,
    server,
    apollo,
    async stop() {
      await close(server);
      await apollo.stop();
    },
  };
}
