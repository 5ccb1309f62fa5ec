/**
 * Starts the whole stack in one process: five subgraphs (each with its own database) and the
 * gateway. Used by `npm start` and by the integration tests.
 *
 * The stack holds every service's private key (a KeyRing: it runs them all), but hands each
 * service only its own ServiceKeys (lib/transport/keys.ts): its private key and the public keys
 * it verifies. No service here reaches another's private key, so moving one (ads first) into a
 * process of its own needs no new plumbing: runtime/service.ts already starts each that way.
 */
import type { Knex } from 'knex';
import { startGateway, type Gateway } from '../gateway/index.js';
import { SUBGRAPHS } from '../subgraphs/index.js';
import { SUBGRAPH_NAMES, usesRedis, type SubgraphName } from '../lib/config.js';
import { readSupergraph } from '../schema/supergraph.js';
import { prepareDb, type PgDatabase } from './database.js';
import { serviceKeys, type KeyRing } from '../lib/transport/keys.js';
import { createLogger } from '../lib/log.js';
import type { DestinationStream } from 'pino';
import type { LimitsConfig } from '../gateway/limits.js';
import { signersTrustedBy } from '../subgraphs/definition.js';
import { startSubgraph, type SubgraphService } from '../subgraphs/service.js';

export interface StackOptions {
  /** Directory for `<name>.sqlite` files, or ':memory:' for in-memory databases. */
  dataDir: string;
  /**
   * PostgreSQL URL: when set, every subgraph keeps its tables in its own schema there instead of
   * SQLite. It is the admin too (development): it creates each subgraph's owner and service roles,
   * and each service connects as its own (runtime/database.ts).
   */
  databaseUrl?: string;
  /** Per-subgraph PostgreSQL settings (runtime/database.ts pgDatabaseOf: the configuration's), overriding databaseUrl for that subgraph. */
  databases?: Partial<Record<SubgraphName, PgDatabase | undefined>>;
  /** knex pool size per subgraph on PostgreSQL (default 10). */
  dbPoolMax?: number;
  /** Gateway port (0 for any); subgraphs get port+1..port+5 when port > 0, any port otherwise. */
  port: number;
  host?: string;
  jwtSecret: string;
  /** Every service's private key (lib/transport/keys.ts loadKeyRing; tests: generateKeyRing). */
  keys: KeyRing;
  production?: boolean;
  supergraphSdl?: string;
  /** Called once per phase, for progress output. */
  log?: (message: string) => void;
  /** Where services write their JSON logs (default stdout) and at what level (default LOG_LEVEL or info). */
  logDestination?: DestinationStream;
  logLevel?: string;
  /** Redis URL for cross-process fan-out (REDIS_URL); in-process only when unset. Never given to ads. */
  redisUrl?: string;
  /** Per-subgraph Redis URLs (each its own ACL user: lib/config.ts serviceRedisUrls), overriding redisUrl for that subgraph. */
  redisUrls?: Partial<Record<SubgraphName, string | undefined>>;
  /** Gateway request-limit overrides. */
  limits?: Partial<LimitsConfig>;
}

export interface Stack {
  url: string;
  gateway: Gateway;
  subgraphs: Record<SubgraphName, SubgraphService>;
  dbs: Record<SubgraphName, Knex>;
  /** Stops one subgraph's service and workers; its database stays open (resilience tests). */
  stopSubgraph(name: SubgraphName): Promise<void>;
  /** Starts a stopped subgraph again, on the same port and with the same database. */
  startSubgraph(name: SubgraphName): Promise<void>;
  /** stopSubgraph then startSubgraph. */
  restartSubgraph(name: SubgraphName): Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? (() => undefined);
  const dbs = {} as Record<SubgraphName, Knex>;
  const subgraphs = {} as Record<SubgraphName, SubgraphService>;
  const stopped = new Set<SubgraphName>();
  const stopAll = async () => {
    for (const [name, s] of Object.entries(subgraphs)) if (!stopped.has(name as SubgraphName)) await s.stop();
    for (const db of Object.values(dbs)) await db.destroy();
  };
  // Every service's base URL is known before any starts (fixed ports), or filled in as they start (port 0).
  const peers: Partial<Record<SubgraphName, string>> = {};
  // Each subgraph gets its own private key and the public keys of the services it accepts.
  const redisUrlOf = (name: SubgraphName) => (usesRedis(name) ? (opts.redisUrls?.[name] ?? opts.redisUrl) : undefined);
  const keysOf = (name: SubgraphName) => serviceKeys(opts.keys, name, signersTrustedBy(SUBGRAPHS[name]));
  try {
    for (const [i, name] of SUBGRAPH_NAMES.entries()) {
      const { db, seeded } = await prepareDb(name, opts.dataDir, opts.databases?.[name] ?? opts.databaseUrl, {
        poolMax: opts.dbPoolMax,
        production: opts.production,
        log,
      });
      dbs[name] = db;
      log(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
      subgraphs[name] = await startSubgraph(SUBGRAPHS[name], {
        db,
        keys: keysOf(name),
        peers,
        port: opts.port > 0 ? opts.port + i + 1 : 0,
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: redisUrlOf(name),
      });
      peers[name] = subgraphs[name].url.replace(/\/graphql$/, '');
      log(`${name}: ${subgraphs[name].url}`);
    }
    const supergraphSdl = opts.supergraphSdl ?? readSupergraph();
    const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, subgraphs[n].url])) as Record<SubgraphName, string>;
    const gateway = await startGateway({
      supergraphSdl,
      subgraphUrls,
      // The gateway verifies no service's signature: it trusts no public key.
      keys: serviceKeys(opts.keys, 'gateway', []),
      jwtSecret: opts.jwtSecret,
      production: opts.production ?? false,
      logger: createLogger('gateway', { destination: opts.logDestination, level: opts.logLevel }),
      limits: opts.limits,
      port: opts.port,
      host: opts.host,
    });
    const stopSubgraph = async (name: SubgraphName) => {
      if (stopped.has(name)) return;
      stopped.add(name);
      await subgraphs[name].stop();
    };
    const startOne = async (name: SubgraphName) => {
      if (!stopped.has(name)) return;
      subgraphs[name] = await startSubgraph(SUBGRAPHS[name], {
        db: dbs[name],
        keys: keysOf(name),
        peers,
        // Same port: the gateway and the peers keep their URL for it.
        port: Number(new URL(subgraphs[name].url).port),
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: redisUrlOf(name),
      });
      stopped.delete(name);
    };
    return {
      url: gateway.url,
      gateway,
      subgraphs,
      dbs,
      stopSubgraph,
      startSubgraph: startOne,
      async restartSubgraph(name: SubgraphName) {
        await stopSubgraph(name);
        await startOne(name);
      },
      async stop() {
        await gateway.stop();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
