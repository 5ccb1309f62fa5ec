/**
 * What a subgraph is: its schema, resolvers, migrations, loaders, internal routes and workers.
 * Each subgraph folder exports one SubgraphDefinition (its index.ts); subgraphs/service.ts runs it.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Knex } from 'knex';
import type { Caller } from '../lib/auth.js';
import type { SubgraphName } from '../lib/config.js';
import type { Migration } from '../lib/db.js';
import type { Logger } from '../lib/log.js';
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
  /** Key to sign internal (service-to-service) requests to a peer; see lib/transport/internal-client.ts. */
  internalKeyFor(peer: SubgraphName): Buffer;
  /**
   * Verifies a gateway signature made with this subgraph's key over `body`, with the signature
   * fields (lib/transport/signing.ts header names) given as a record: e.g. the graphql-ws connection_init
   * payload of the gateway's subscription bridge (see wsConnectionInitBody). Same replay
   * protection as the HTTP endpoint.
   */
  verifyGatewaySignature(fields: Record<string, string | undefined>, body: string | Buffer): Promise<VerifyResult>;
  /** Redis URL for cross-process fan-out (scale-out); undefined: single process, in-process only. */
  redisUrl: string | undefined;
  /** This service's logger (pino): workers and routes log through it, never through console. */
  logger: Logger;
}

/** A signed service-to-service endpoint, served at POST /internal/<name>. */
export type InternalRoute<S = unknown> = (env: ServiceEnv, body: unknown, requestId: string, services: S) => Promise<unknown>;

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
  /** Signed internal endpoints (events feed, commands), never part of the graph. */
  internalRoutes?: Readonly<Record<string, InternalRoute<S>>>;
  /** Background work (e.g. an event consumer), started after the server listens; returns its stopper. */
  startWorkers?(env: ServiceEnv, server: http.Server, services: S): Promise<() => Promise<void>>;
}

export function loadSdl(url: URL): DocumentNode {
  return parse(fs.readFileSync(url, 'utf8'));
}

export function buildSchema(def: SubgraphDefinition): GraphQLSchema {
  return buildSubgraphSchema({ typeDefs: def.typeDefs, resolvers: def.resolvers as never });
}
