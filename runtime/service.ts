/**
 * Runs ONE paygraph service in this process (scripts/serve.ts): a subgraph, or the gateway, with
 * its port, database, Redis and peers from the configuration (lib/config.ts). Several such
 * processes, started by `npm run start:cluster` (runtime/cluster.ts) or by any process manager, make a
 * scaled-out paygraph: several gateways, several processes of one subgraph, sharing PostgreSQL
 * (each subgraph's service on its own role: PAYGRAPH_<NAME>_DATABASE_URL, or derived from
 * DATABASE_URL, see runtime/database.ts) and Redis (each its own ACL user's PAYGRAPH_<NAME>_REDIS_URL,
 * else REDIS_URL; ads none: lib/config.ts serviceRedisUrls).
 */
import { startGateway } from '../gateway/index.js';
import { readManifest } from '../operations/manifest.js';
import type { GatewayExtras } from './stack.js';
import { SUBGRAPHS } from '../subgraphs/index.js';
import { baseUrlOf, parseUrlList, SUBGRAPH_NAMES, type Config, type ServiceName, type SubgraphName } from '../lib/config.js';
import { loadServiceKeys } from '../lib/transport/keys.js';
import { createLogger } from '../lib/log.js';
import { pgDatabaseOf, prepareDb } from './database.js';
import { readSupergraph } from '../schema/supergraph.js';
import { signersTrustedBy } from '../subgraphs/definition.js';
import { startSubgraph } from '../subgraphs/service.js';

export interface RunningService {
  name: ServiceName;
  url: string;
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Port to listen on; default: the gateway's PORT, or the port of the subgraph's (first) PAYGRAPH_<NAME>_URL. */
  port?: number;
  host?: string;
  /** Progress output (not the JSON logs). */
  log?: (message: string) => void;
}

/** The port a service listens on by default (see ServeOptions.port). */
export function defaultPort(name: ServiceName, config: Config): number {
  if (name === 'gateway') return config.port;
  return Number(new URL(parseUrlList(config.subgraphUrls[name])[0]!).port);
}

/**
 * Migrates and seeds every subgraph's database, once, and closes them: the step a cluster runs
 * before its services start. On PostgreSQL it is the step that has the admin and owner URLs: it
 * creates the roles, migrates as each schema's owner and grants each service role its rights
 * (runtime/database.ts). A service given its owner's (or the admin) URL too does the same at its
 * own start, under a PostgreSQL advisory lock; one given only its service role's URL checks that
 * its schema is migrated.
 */
export async function migrateAll(config: Config, log: (message: string) => void = () => undefined): Promise<void> {
  for (const name of SUBGRAPH_NAMES) {
    const { db, seeded } = await prepareDb(name, config.dataDir, pgDatabaseOf(config, name), { poolMax: 2, production: config.production, log });
    await db.destroy();
    log(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
  }
}

export async function serveService(name: ServiceName, config: Config, opts: ServeOptions = {}): Promise<RunningService> {
  const port = opts.port ?? defaultPort(name, config);
  return name === 'gateway' ? serveGateway(config, port, opts.host) : serveSubgraph(name, config, port, opts);
}

async function serveSubgraph(name: SubgraphName, config: Config, port: number, opts: ServeOptions): Promise<RunningService> {
  // Its own private key and the public keys of the services it accepts, nothing else; read first,
  // so that a missing one stops the process before anything opens (naming the variable).
  const keys = loadServiceKeys(name, signersTrustedBy(SUBGRAPHS[name]), config.keys);
  const { db, seeded } = await prepareDb(name, config.dataDir, pgDatabaseOf(config, name), {
    poolMax: config.dbPoolMax,
    production: config.production,
    log: opts.log,
  });
  opts.log?.(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
  // Internal calls (lib/transport/internal-client.ts callInternal) take a peer's list of base URLs and fail over on
  // a refused connection; a cluster lists each process's "home" peer first (runtime/cluster.ts).
  const peers: Partial<Record<SubgraphName, string>> = {};
  for (const peer of SUBGRAPH_NAMES) if (peer !== name) peers[peer] = parseUrlList(config.subgraphUrls[peer]).map(baseUrlOf).join(',');
  try {
    const service = await startSubgraph(SUBGRAPHS[name], {
      db,
      keys,
      peers,
      port,
      host: opts.host,
      logger: createLogger(name),
      redisUrl: config.serviceRedisUrls[name],
      auditOrigin: config.auditOrigin,
    });
    return {
      name,
      url: service.url,
      async stop() {
        await service.stop();
        await db.destroy();
      },
    };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

async function serveGateway(config: Config, port: number, host: string | undefined): Promise<RunningService> {
  // URL lists go to the gateway as they are: its data sources and subscription bridge take turns
  // over a subgraph's processes and fail over; /ready reports degraded processes.
  const gateway = await startGateway({
    supergraphSdl: readSupergraph(),
    subgraphUrls: config.subgraphUrls,
    // The gateway's own private key; it verifies no one's signature, so it needs no public key.
    keys: loadServiceKeys('gateway', [], config.keys),
    tokenVerifier: config.tokenVerifier,
    production: config.production,
    logger: createLogger('gateway'),
    ...gatewayExtras(config),
    maxSubscriptionsPerUser: config.maxSubscriptionsPerUser,
    port,
    host,
  });
  return { name: 'gateway', url: gateway.url, stop: () => gateway.stop() };
}

/** The gateway's operator settings from the configuration: trusted documents (mode, manifest), metrics port, CORS origins, the shared mutation rate limit. */
export function gatewayExtras(config: Config): GatewayExtras & { trustedDocuments: { manifest: ReturnType<typeof readManifest> } } {
  return {
    trustedDocuments: { mode: config.trustedDocuments.mode, manifest: readManifest(config.trustedDocuments.manifestFile) },
    metricsPort: config.metricsPort,
    corsOrigins: config.corsOrigins,
    rateLimitRedisUrl: config.serviceRedisUrls.gateway,
    limits: {
      ...(config.mutationsPerMinute === undefined ? {} : { mutationsPerWindow: config.mutationsPerMinute, mutationWindowMs: 60_000 }),
      ...(config.auditReadsPerMinute === undefined ? {} : { auditReadsPerMinute: config.auditReadsPerMinute }),
    },
  };
}
