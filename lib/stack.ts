/**
 * Starts the whole stack in one process: five subgraphs (each with its own database) and the
 * gateway. Used by `npm start` and by the integration tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { startGateway, type Gateway } from '../gateway/index.js';
import { SUBGRAPHS } from '../subgraphs/index.js';
import { buildFixture } from '../seeds/fixture.js';
import { SUBGRAPH_NAMES, type SubgraphName } from './config.js';
import { migrate, openDb, withMigrationLock } from './db.js';
import { deriveInternalKey } from './internal.js';
import { createLogger } from './log.js';
import type { DestinationStream } from 'pino';
import type { LimitsConfig } from '../gateway/limits.js';
import { deriveSubgraphKey } from './signing.js';
import { startSubgraph, type SubgraphService } from './subgraph.js';

export const SUPERGRAPH_PATH = new URL('../schema/supergraph.graphql', import.meta.url);

export interface StackOptions {
  /** Directory for `<name>.sqlite` files, or ':memory:' for in-memory databases. */
  dataDir: string;
  /** PostgreSQL URL: when set, every subgraph keeps its tables in its own schema there instead of SQLite. */
  databaseUrl?: string;
  /** Per-subgraph PostgreSQL URLs (PAYGRAPH_<NAME>_DATABASE_URL), overriding databaseUrl for that subgraph. */
  databaseUrls?: Partial<Record<SubgraphName, string | undefined>>;
  /** knex pool size per subgraph on PostgreSQL (default 10). */
  dbPoolMax?: number;
  /** Gateway port (0 for any); subgraphs get port+1..port+5 when port > 0, any port otherwise. */
  port: number;
  host?: string;
  jwtSecret: string;
  gatewaySecret: string;
  production?: boolean;
  supergraphSdl?: string;
  /** Called once per phase, for progress output. */
  log?: (message: string) => void;
  /** Where services write their JSON logs (default stdout) and at what level (default LOG_LEVEL or info). */
  logDestination?: DestinationStream;
  logLevel?: string;
  /** Redis URL for cross-process fan-out (REDIS_URL); in-process only when unset. */
  redisUrl?: string;
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

/**
 * Opens, migrates and (when new) seeds a subgraph's database: SQLite under dataDir, or PostgreSQL.
 * On PostgreSQL, migrate + seed run under an advisory lock (lib/db.ts withMigrationLock), so
 * several processes of one subgraph starting together on an empty database (`npm run
 * start:cluster`, scripts/serve.ts) migrate and seed it exactly once.
 */
export async function prepareDb(name: SubgraphName, dataDir: string, databaseUrl?: string, opts: { poolMax?: number } = {}): Promise<{ db: Knex; seeded: boolean }> {
  const db = databaseUrl
    ? openDb({ postgresUrl: databaseUrl, schema: name, poolMax: opts.poolMax })
    : openDb({ sqliteFile: dataDir === ':memory:' ? ':memory:' : path.join(dataDir, `${name}.sqlite`) });
  try {
    const def = SUBGRAPHS[name];
    const seeded = await withMigrationLock(db, `paygraph:migrate:${name}`, async () => {
      await migrate(db, def.migrations);
      return seedOnce(db, def.seededTable, (trx) => def.seed(trx, buildFixture()));
    });
    return { db, seeded };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/** The table whose one row says "this database was seeded". */
export const SEED_MARKER_TABLE = 'paygraph_seed';

/**
 * Seeds a database at most once: the seed and its marker row commit in one transaction, so a
 * process that dies while seeding leaves an unseeded database that the next start seeds, never a
 * half-seeded one. A database from before the marker existed counts as seeded when its
 * `seededTable` has rows.
 */
export async function seedOnce(db: Knex, seededTable: string | null, seed: (trx: Knex.Transaction) => Promise<void>): Promise<boolean> {
  if (!(await db.schema.hasTable(SEED_MARKER_TABLE))) {
    const legacy = seededTable !== null && (await db(seededTable).first()) !== undefined;
    await db.transaction(async (trx) => {
      await trx.schema.createTable(SEED_MARKER_TABLE, (t) => t.string('seeded_at', 40).notNullable());
      if (legacy) await trx(SEED_MARKER_TABLE).insert({ seeded_at: 'before the seed marker' });
    });
  }
  if (await db(SEED_MARKER_TABLE).first()) return false;
  await db.transaction(async (trx) => {
    await seed(trx);
    await trx(SEED_MARKER_TABLE).insert({ seeded_at: new Date().toISOString() });
  });
  return true;
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
  const internalKeyFor = (peer: SubgraphName) => deriveInternalKey(opts.gatewaySecret, peer);
  try {
    for (const [i, name] of SUBGRAPH_NAMES.entries()) {
      const { db, seeded } = await prepareDb(name, opts.dataDir, opts.databaseUrls?.[name] ?? opts.databaseUrl, { poolMax: opts.dbPoolMax });
      dbs[name] = db;
      log(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
      subgraphs[name] = await startSubgraph(SUBGRAPHS[name], {
        db,
        key: deriveSubgraphKey(opts.gatewaySecret, name),
        internalKey: deriveInternalKey(opts.gatewaySecret, name),
        peers,
        internalKeyFor,
        port: opts.port > 0 ? opts.port + i + 1 : 0,
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: opts.redisUrl,
      });
      peers[name] = subgraphs[name].url.replace(/\/graphql$/, '');
      log(`${name}: ${subgraphs[name].url}`);
    }
    const supergraphSdl = opts.supergraphSdl ?? fs.readFileSync(SUPERGRAPH_PATH, 'utf8');
    const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, subgraphs[n].url])) as Record<SubgraphName, string>;
    const gateway = await startGateway({
      supergraphSdl,
      subgraphUrls,
      gatewaySecret: opts.gatewaySecret,
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
        key: deriveSubgraphKey(opts.gatewaySecret, name),
        internalKey: deriveInternalKey(opts.gatewaySecret, name),
        peers,
        internalKeyFor,
        // Same port: the gateway and the peers keep their URL for it.
        port: Number(new URL(subgraphs[name].url).port),
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: opts.redisUrl,
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
