/**
 * Runs ONE paygraph service in this process (scripts/serve.ts): a subgraph, or the gateway, with
 * its port, database, Redis and peers from the configuration (lib/config.ts). Several such
 * processes, started by `npm run start:cluster` (lib/cluster.ts) or by any process manager, make a
 * scaled-out paygraph: several gateways, several processes of one subgraph, sharing PostgreSQL
 * (DATABASE_URL / PAYGRAPH_<NAME>_DATABASE_URL) and Redis (REDIS_URL).
 */
import fs from 'node:fs';
import type http from 'node:http';
import { startGateway } from '../gateway/index.js';
import { internalAuditSink } from '../gateway/fence.js';
import { SUBGRAPHS } from '../subgraphs/index.js';
import { baseUrlOf, parseUrlList, SUBGRAPH_NAMES, type Config, type SubgraphName } from './config.js';
import { sendJson } from './http.js';
import { deriveInternalKey } from './internal.js';
import { createLogger } from './log.js';
import { deriveSubgraphKey } from './signing.js';
import { prepareDb, SUPERGRAPH_PATH } from './stack.js';
import { startSubgraph } from './subgraph.js';
import type { ServiceName } from './cluster.js';

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
 * before its services start. (Each service's own start does the same under a PostgreSQL advisory
 * lock, so skipping this step is safe too; doing it first just keeps service starts quick.)
 */
export async function migrateAll(config: Config, log: (message: string) => void = () => undefined): Promise<void> {
  for (const name of SUBGRAPH_NAMES) {
    const { db, seeded } = await prepareDb(name, config.dataDir, config.subgraphDatabaseUrls[name], { poolMax: config.dbPoolMax });
    await db.destroy();
    log(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
  }
}

export async function serveService(name: ServiceName, config: Config, opts: ServeOptions = {}): Promise<RunningService> {
  const port = opts.port ?? defaultPort(name, config);
  return name === 'gateway' ? serveGateway(config, port, opts.host) : serveSubgraph(name, config, port, opts);
}

async function serveSubgraph(name: SubgraphName, config: Config, port: number, opts: ServeOptions): Promise<RunningService> {
  const { db, seeded } = await prepareDb(name, config.dataDir, config.subgraphDatabaseUrls[name], { poolMax: config.dbPoolMax });
  opts.log?.(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
  // Internal calls (lib/internal.ts callInternal) take a peer's list of base URLs and fail over on
  // a refused connection; a cluster lists each process's "home" peer first (lib/cluster.ts).
  const peers: Partial<Record<SubgraphName, string>> = {};
  for (const peer of SUBGRAPH_NAMES) if (peer !== name) peers[peer] = parseUrlList(config.subgraphUrls[peer]).map(baseUrlOf).join(',');
  try {
    const service = await startSubgraph(SUBGRAPHS[name], {
      db,
      key: deriveSubgraphKey(config.gatewaySecret, name),
      internalKey: deriveInternalKey(config.gatewaySecret, name),
      peers,
      internalKeyFor: (peer) => deriveInternalKey(config.gatewaySecret, peer),
      port,
      host: opts.host,
      logger: createLogger(name),
      redisUrl: config.redisUrl,
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
  const logger = createLogger('gateway');
  const lists = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, parseUrlList(config.subgraphUrls[n])])) as Record<SubgraphName, string[]>;
  const subgraphUrls = { ...config.subgraphUrls };
  // The subscription bridge (gateway/subscriptions.ts) opens its upstream graphql-ws connection to
  // one URL: until it takes lists, the gateway uses the first alerts process for alerts, and a
  // cluster gives each gateway its own first (lib/cluster.ts); Redis fan-out delivers the alerts
  // every alerts process raises to all of them.
  if (lists.alerts.length > 1) {
    logger.info({ alerts: lists.alerts[0] }, 'PAYGRAPH_ALERTS_URL lists several processes: this gateway serves alerts (HTTP and subscriptions) from the first one');
    subgraphUrls.alerts = lists.alerts[0]!;
  }
  const gateway = await startGateway({
    supergraphSdl: fs.readFileSync(SUPERGRAPH_PATH, 'utf8'),
    subgraphUrls,
    gatewaySecret: config.gatewaySecret,
    jwtSecret: config.jwtSecret,
    production: config.production,
    logger,
    // The audit sink calls one accounts process: the first of its list.
    audit: internalAuditSink(baseUrlOf(lists.accounts[0]!), deriveInternalKey(config.gatewaySecret, 'accounts')),
    port,
    host,
  });
  if (SUBGRAPH_NAMES.some((n) => parseUrlList(subgraphUrls[n]).length > 1)) serveListAwareReady(gateway.server, subgraphUrls);
  return { name: 'gateway', url: gateway.url, stop: () => gateway.stop() };
}

/**
 * The gateway's own /ready (gateway/index.ts) checks one /health per subgraph URL, so it reports a
 * comma-separated list as unreachable. Until it understands lists, a gateway serving lists answers
 * /ready here: ready when every subgraph has at least one process answering /health (the data
 * source fails over to it), listing the processes that do not as `degraded`. Every other request
 * goes to the gateway's handler unchanged.
 */
function serveListAwareReady(server: http.Server, subgraphUrls: Readonly<Record<SubgraphName, string>>): void {
  const handlers = server.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if ((req.url ?? '/').split('?')[0] !== '/ready') {
      for (const h of handlers) h.call(server, req, res);
      return;
    }
    void readiness(subgraphUrls).then(
      ({ unreachable, degraded }) => sendJson(res, unreachable.length ? 503 : 200, { status: unreachable.length ? 'unavailable' : 'ready', unreachable, degraded }),
      () => sendJson(res, 503, { status: 'unavailable' }),
    );
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrlOf(url)}/health`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Subgraphs with no healthy process (`unreachable`), and single processes that are down (`degraded`). */
export async function readiness(subgraphUrls: Readonly<Record<SubgraphName, string>>): Promise<{ unreachable: string[]; degraded: string[] }> {
  const unreachable: string[] = [];
  const degraded: string[] = [];
  await Promise.all(
    SUBGRAPH_NAMES.map(async (name) => {
      const urls = parseUrlList(subgraphUrls[name]);
      const up = await Promise.all(urls.map(healthy));
      if (!up.some(Boolean)) unreachable.push(name);
      else urls.forEach((u, i) => (up[i] ? undefined : degraded.push(`${name} ${u}`)));
    }),
  );
  return { unreachable: unreachable.sort(), degraded: degraded.sort() };
}
