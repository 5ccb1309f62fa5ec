/**
 * What a subgraph is: its schema, resolvers, migrations, loaders, internal routes and workers.
 * Each subgraph folder exports one SubgraphDefinition (its index.ts); subgraphs/service.ts runs it.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Knex } from 'knex';
import type { Registry } from 'prom-client';
import type { Caller } from '../lib/auth.js';
import type { ServiceName, SubgraphName } from '../lib/config.js';
import type { Migration } from '../lib/db.js';
import type { Logger } from '../lib/log.js';
import type { Signer } from '../lib/transport/keys.js';
import type { VerifyResult } from '../lib/transport/signing.js';

/** What every resolver gets: one per request. */
export interface SubgraphContext<L, S = unknown> {
  db: Knex;
  caller: Caller;
  loaders: L;
  requestId: string;
  /** The service's collaborators (SubgraphDefinition.createServices), shared by every request. */
  services: S;
}

/** What a subgraph's internal routes and background workers get. */
export interface ServiceEnv {
  db: Knex;
  /** URLs of the other subgraphs' services (base URL, without /graphql), by name. */
  peers: Readonly<Partial<Record<SubgraphName, string>>>;
  /**
   * This service's own signing key: what its internal calls to peers are signed with
   * (lib/transport/internal-client.ts callInternal). It holds no other service's private key.
   */
  signer: Signer;
  /**
   * Verifies a gateway signature on this subgraph's graphql-ws endpoint: of a connection_init
   * (`content` wsConnectionInitBody()) or of a subscription's grant (`content` wsSubscribeBody);
   * `fields` are the signature fields (lib/transport/signing.ts SIGNED_FIELDS). The same keys and
   * replay protection as the HTTP endpoint.
   */
  verifyGatewayConnection(fields: Record<string, string | undefined>, content: string): Promise<VerifyResult>;
  /** Redis URL for cross-process fan-out (scale-out); undefined: single process, in-process only. */
  redisUrl: string | undefined;
  /** This service's logger (pino): workers and routes log through it, never through console. */
  logger: Logger;
  /** The audit log's origin (accounts only; lib/config.ts PAYGRAPH_AUDIT_ORIGIN); unset: derived from its key. */
  auditOrigin?: string;
}

/** The handler of a signed service-to-service endpoint, served at POST /internal/<name>. */
export type InternalRoute<S = unknown> = (env: ServiceEnv, body: unknown, requestId: string, services: S) => Promise<unknown>;

/** An internal endpoint: its handler and the services allowed to call it. */
export interface InternalEndpoint<S = unknown> {
  /**
   * The services whose signatures this endpoint accepts (their public keys are the only ones it
   * verifies against). A request signed as any other service is refused 403 before the handler
   * runs; one not validly signed 401. Never `ads`: the advertising zone calls no payments-zone route.
   */
  callers: readonly ServiceName[];
  handle: InternalRoute<S>;
}

/** Who may send a subgraph GraphQL requests (HTTP /graphql, and graphql-ws): the gateway alone. */
export const GRAPH_CALLERS: readonly ServiceName[] = ['gateway'];

/** The services whose public keys a subgraph needs: the gateway, and every caller of its internal endpoints. */
export function signersTrustedBy<S>(def: { internalRoutes?: Readonly<Record<string, InternalEndpoint<S>>> }): ServiceName[] {
  const callers = Object.values(def.internalRoutes ?? {}).flatMap((route) => route.callers);
  return [...new Set([...GRAPH_CALLERS, ...callers])];
}

export interface SubgraphDefinition<L = unknown, S = unknown> {
  name: SubgraphName;
  typeDefs: DocumentNode;
  /** Resolver map in buildSubgraphSchema's shape (including `__resolveReference`). */
  resolvers: Record<string, unknown>;
  migrations: readonly Migration[];
  /**
   * The collaborators of one running service (e.g. the ledger with its group commit and its commit
   * hooks), built once when the service starts and handed to every request context, internal
   * route and worker: passed explicitly, never found through module-level registries.
   */
  createServices?(env: ServiceEnv): S;
  createLoaders(db: Knex, caller: Caller, services: S): L;
  /** Signed internal endpoints (events feed, commands), never part of the graph, each with who may call it. */
  internalRoutes?: Readonly<Record<string, InternalEndpoint<S>>>;
  /**
   * This subgraph's own Prometheus metrics, registered on the service's registry (served at its
   * /metrics, beside the signature failures every service counts): e.g. alerts' consumer lag.
   */
  metrics?(registry: Registry, env: ServiceEnv, services: S): void;
  /** Background work (e.g. an event consumer), started after the server listens; returns its stopper. */
  startWorkers?(env: ServiceEnv, server: http.Server, services: S): Promise<() => Promise<void>>;
}

export function loadSdl(url: URL): DocumentNode {
  return parse(fs.readFileSync(url, 'utf8'));
}

export function buildSchema(def: SubgraphDefinition): GraphQLSchema {
  return buildSubgraphSchema({ typeDefs: def.typeDefs, resolvers: def.resolvers as never });
}
