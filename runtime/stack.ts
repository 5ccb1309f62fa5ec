/**
 * Starts the whole stack: five subgraphs (each with its own database) and the gateway, in this
 * process, except the subgraphs named in `isolate`, each run as a child process of its own
 * (scripts/serve.ts). Used by `npm start` (ads isolated) and by the integration tests (all in
 * this process, unless a test isolates one).
 *
 * The stack holds every service's private key (a KeyRing: it runs them all), but hands each
 * service only its own ServiceKeys (lib/transport/keys.ts): its private key and the public keys
 * it verifies. An isolated subgraph's process is given an environment built from nothing
 * (isolatedEnv): its own private key and the public keys it verifies as PEM, its own database
 * (the SQLite file under the data directory, or its service role's URL), its peers' URLs, and
 * none of the JWT secret, the other services' keys or the other databases.
 */
import type { ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import path from 'node:path';
import type { Knex } from 'knex';
import { startGateway, type Gateway, type GatewayOptions } from '../gateway/index.js';
import type { PersistedQueryManifest, TrustedDocumentsMode } from '../gateway/trusted-documents.js';
import { readManifest } from '../operations/manifest.js';
import { secretVerifier, type TokenVerifierConfig } from '../lib/auth.js';
import { SUBGRAPHS } from '../subgraphs/index.js';
import { SUBGRAPH_NAMES, usesRedis, type SubgraphName } from '../lib/config.js';
import { readSupergraph } from '../schema/supergraph.js';
import { prepareDb, type PgDatabase } from './database.js';
import { privateKeyPem, privateKeyVariable, publicKeyPem, publicKeyVariable, serviceKeys, type KeyRing } from '../lib/transport/keys.js';
import { createLogger } from '../lib/log.js';
import type { DestinationStream } from 'pino';
import type { LimitsConfig } from '../gateway/limits.js';
import type { WebAppHandler } from '../gateway/web-app.js';
import { signersTrustedBy } from '../subgraphs/definition.js';
import { startSubgraph, type SubgraphService } from '../subgraphs/service.js';
import { EGRESS_GUARD, exited, freePorts, spawnServe, stopChild, waitReady } from './cluster.js';

export interface StackOptions<I extends SubgraphName = never> {
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
  /**
   * How the gateway verifies client tokens (lib/auth.ts): `jwtSecret` is shorthand for an HS256
   * secret with the default issuer; `tokenVerifier` any configuration (an issuer's public key,
   * a JWKS URL). Exactly one of them.
   */
  jwtSecret?: string;
  tokenVerifier?: TokenVerifierConfig;
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
  /** Subscriptions one user may hold at once on the gateway (default 10). */
  maxSubscriptionsPerUser?: number;
  /** The transparency log's origin (PAYGRAPH_AUDIT_ORIGIN); unset: `paygraph.dev/audit/<install id>`. */
  auditOrigin?: string;
  /** Bounds on unauthenticated callers' refused attempts (gateway/index.ts GatewayOptions.refusals). */
  refusals?: GatewayOptions['refusals'];
  /**
   * The gateway's operator settings (gateway/index.ts GatewayOptions): metrics port, CORS origins,
   * trusted documents (default: the committed manifest, operations/manifest.json, required in production).
   */
  gateway?: GatewayExtras;
  /**
   * Subgraphs run each in a child process of its own (scripts/serve.ts) instead of in this one,
   * with nothing in their environment but what they need (isolatedEnv). Their database is
   * migrated and seeded here first; on SQLite it is a file, so dataDir may not be ':memory:'.
   * Default: none (`npm start` isolates ads).
   */
  isolate?: readonly I[];
  /**
   * Every output line of an isolated subgraph's process (its JSON logs on stdout, anything on
   * stderr). Default: written to logDestination (stdout when unset). Kept in StackProcess.lines too.
   */
  onChildLine?: (name: SubgraphName, line: string, stream: 'stdout' | 'stderr') => void;
  /** How long an isolated subgraph's process has to answer /ready (default 60 s). */
  readyTimeoutMs?: number;
  /** The reference web client served by the gateway at /app (runtime/web-app.ts); none: not served. */
  webApp?: WebAppHandler;
}

/** The gateway settings a stack passes through (StackOptions.gateway). */
export type GatewayExtras = Partial<Pick<GatewayOptions, 'metricsPort' | 'corsOrigins' | 'rateLimitRedisUrl' | 'limits'>> & {
  trustedDocuments?: { mode?: TrustedDocumentsMode; manifest?: PersistedQueryManifest };
};

/** An isolated subgraph's child process (StackOptions.isolate). */
export interface StackProcess {
  name: SubgraphName;
  /** http://host:port/graphql (the same across restarts). */
  url: string;
  port: number;
  /** The running (or last) child: replaced by startSubgraph. */
  child: ChildProcess;
  /** The running child's process id. */
  readonly pid: number;
  /** Its output lines so far (the last 20 000), across restarts. */
  lines: string[];
}

export interface Stack<I extends SubgraphName = never> {
  url: string;
  gateway: Gateway;
  /** The subgraphs running in this process. */
  subgraphs: Record<Exclude<SubgraphName, I>, SubgraphService>;
  /** Their databases (an isolated subgraph's is its process's own). */
  dbs: Record<Exclude<SubgraphName, I>, Knex>;
  /** Every subgraph's GraphQL URL, as the gateway is given them. */
  subgraphUrls: Record<SubgraphName, string>;
  /** The isolated subgraphs' processes. */
  processes: Record<I, StackProcess>;
  /** Stops one subgraph's service and workers; its database stays open (resilience tests). An isolated one's process: SIGTERM, then SIGKILL after 15 s. */
  stopSubgraph(name: SubgraphName): Promise<void>;
  /** Starts a stopped subgraph again, on the same port and with the same database. */
  startSubgraph(name: SubgraphName): Promise<void>;
  /** stopSubgraph then startSubgraph. */
  restartSubgraph(name: SubgraphName): Promise<void>;
  /** Stops everything (idempotent): no isolated subgraph's process outlives it. */
  stop(): Promise<void>;
}

export interface IsolatedEnvOptions {
  name: SubgraphName;
  /** The ring the stack holds: only `name`'s private key and its trusted signers' public keys are taken from it. */
  keys: KeyRing;
  host: string;
  production: boolean;
  /** Every subgraph's GraphQL URL (PAYGRAPH_<NAME>_URL: its own, for its port, and its peers'). */
  subgraphUrls: Record<SubgraphName, string>;
  /** The data directory (SQLite: its database file is there); ':memory:' or unset: none given. */
  dataDir?: string;
  /** Its own service role's PostgreSQL URL (PAYGRAPH_<NAME>_DATABASE_URL); unset: SQLite. */
  databaseUrl?: string;
  dbPoolMax?: number;
  redisUrl?: string;
  /** The accounts service's audit origin (PAYGRAPH_AUDIT_ORIGIN), for accounts alone. */
  auditOrigin?: string;
  logLevel?: string;
  /** The supervisor's environment, read for NODE_ENV, LOG_LEVEL and the egress guard only (default process.env). */
  from?: NodeJS.ProcessEnv;
}

/**
 * The whole environment of an isolated subgraph's process, built from nothing: NODE_ENV,
 * LOG_LEVEL, HOST, PAYGRAPH_DATA_DIR, its own database URL (PostgreSQL), PAYGRAPH_DB_POOL_MAX,
 * REDIS_URL, its own private key (PAYGRAPH_<NAME>_PRIVATE_KEY, PEM), the public keys of the
 * services it verifies (PAYGRAPH_<PEER>_PUBLIC_KEY), every subgraph's URL, and the egress guard's
 * switches when the supervisor has it (tests). Nothing else of the supervisor's environment: no
 * JWT secret, no other private key, no other database, no PATH or HOME.
 */
export function isolatedEnv(o: IsolatedEnvOptions): NodeJS.ProcessEnv {
  const from = o.from ?? process.env;
  const env: NodeJS.ProcessEnv = {
    NODE_ENV: o.production ? 'production' : from.NODE_ENV && from.NODE_ENV !== 'production' ? from.NODE_ENV : 'development',
    HOST: o.host,
    [privateKeyVariable(o.name)]: privateKeyPem(o.keys[o.name]),
  };
  for (const peer of signersTrustedBy(SUBGRAPHS[o.name])) env[publicKeyVariable(peer)] = publicKeyPem(createPublicKey(o.keys[peer]));
  const level = o.logLevel ?? from.LOG_LEVEL;
  if (level) env.LOG_LEVEL = level;
  if (o.dataDir && o.dataDir !== ':memory:') env.PAYGRAPH_DATA_DIR = path.resolve(o.dataDir);
  if (o.databaseUrl) env[`PAYGRAPH_${o.name.toUpperCase()}_DATABASE_URL`] = o.databaseUrl;
  if (o.dbPoolMax !== undefined) env.PAYGRAPH_DB_POOL_MAX = String(o.dbPoolMax);
  if (o.redisUrl) env.REDIS_URL = o.redisUrl;
  if (o.auditOrigin && o.name === 'accounts') env.PAYGRAPH_AUDIT_ORIGIN = o.auditOrigin;
  for (const n of SUBGRAPH_NAMES) env[`PAYGRAPH_${n.toUpperCase()}_URL`] = o.subgraphUrls[n];
  // The egress guard (lib/egress-guard.mjs) of a guarded supervisor (the tests) guards the child too.
  if (from.PAYGRAPH_EGRESS_GUARD === '1' || (from.NODE_OPTIONS ?? '').includes(EGRESS_GUARD)) env.PAYGRAPH_EGRESS_GUARD = '1';
  if (from.PAYGRAPH_EGRESS_ALLOW) env.PAYGRAPH_EGRESS_ALLOW = from.PAYGRAPH_EGRESS_ALLOW;
  return env;
}

export async function startStack<I extends SubgraphName = never>(opts: StackOptions<I>): Promise<Stack<I>> {
  if ((opts.jwtSecret === undefined) === (opts.tokenVerifier === undefined)) throw new Error('startStack needs exactly one of jwtSecret and tokenVerifier');
  const tokenVerifier = opts.tokenVerifier ?? secretVerifier(opts.jwtSecret!);
  const log = opts.log ?? (() => undefined);
  const host = opts.host ?? '127.0.0.1';
  const isolated = new Set<SubgraphName>(opts.isolate ?? []);
  for (const name of isolated) {
    if (!(SUBGRAPH_NAMES as readonly string[]).includes(name)) throw new Error(`isolate: no subgraph ${name}`);
    if (opts.dataDir === ':memory:' && !(opts.databases?.[name] ?? opts.databaseUrl))
      throw new Error(`isolate: ${name} runs in a process of its own, so its SQLite database must be a file: give a data directory, not ':memory:'`);
  }
  const dbs = {} as Record<SubgraphName, Knex>;
  const subgraphs = {} as Record<SubgraphName, SubgraphService>;
  const processes = {} as Record<SubgraphName, StackProcess>;
  const spawnOf = new Map<SubgraphName, { args: string[]; env: NodeJS.ProcessEnv }>();
  const stopped = new Set<SubgraphName>();
  const stopAll = async () => {
    for (const [name, s] of Object.entries(subgraphs)) if (!stopped.has(name as SubgraphName)) await s.stop();
    await Promise.all(Object.values(processes).map((p) => stopChild(p.child)));
    for (const db of Object.values(dbs)) await db.destroy();
  };
  const urlOf = (port: number) => `http://${host}:${port}/graphql`;
  // Every service's base URL is known before any starts (fixed ports, and an isolated subgraph's
  // port, chosen here), or filled in as they start (port 0).
  const peers: Partial<Record<SubgraphName, string>> = {};
  const fixedPort = (name: SubgraphName) => (opts.port > 0 ? opts.port + SUBGRAPH_NAMES.indexOf(name) + 1 : 0);
  const isolatedPorts = new Map<SubgraphName, number>();
  const free = opts.port > 0 ? [] : await freePorts(isolated.size, host);
  for (const name of isolated) {
    isolatedPorts.set(name, opts.port > 0 ? fixedPort(name) : free.shift()!);
    peers[name] = urlOf(isolatedPorts.get(name)!).replace(/\/graphql$/, '');
  }
  const lineOut = (name: SubgraphName, line: string, stream: 'stdout' | 'stderr') => {
    if (opts.onChildLine) opts.onChildLine(name, line, stream);
    else (opts.logDestination ?? process.stdout).write(`${line}\n`);
  };
  const spawnChild = (name: SubgraphName) => {
    const p = processes[name];
    const { args, env } = spawnOf.get(name)!;
    p.child = spawnServe(args, name, env, (_, line, stream) => lineOut(name, line, stream), p.lines);
  };
  const readyTimeout = opts.readyTimeoutMs ?? 60_000;
  // Each subgraph gets its own private key and the public keys of the services it accepts.
  const redisUrlOf = (name: SubgraphName) => (usesRedis(name) ? (opts.redisUrls?.[name] ?? opts.redisUrl) : undefined);
  const keysOf = (name: SubgraphName) => serviceKeys(opts.keys, name, signersTrustedBy(SUBGRAPHS[name]));
  try {
    const serviceUrls: Partial<Record<SubgraphName, string>> = {};
    for (const name of SUBGRAPH_NAMES) {
      const { db, seeded, url } = await prepareDb(name, opts.dataDir, opts.databases?.[name] ?? opts.databaseUrl, {
        poolMax: opts.dbPoolMax,
        production: opts.production,
        log,
      });
      log(`${name}: database ready${seeded ? ' (migrated and seeded)' : ''}`);
      if (isolated.has(name)) {
        // Migrated and seeded here (on PostgreSQL as the schema's owner); its process opens it
        // again, on its service role only.
        await db.destroy();
        serviceUrls[name] = url;
        continue;
      }
      dbs[name] = db;
      subgraphs[name] = await startSubgraph(SUBGRAPHS[name], {
        db,
        keys: keysOf(name),
        peers,
        port: fixedPort(name),
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: redisUrlOf(name),
        auditOrigin: opts.auditOrigin,
      });
      peers[name] = subgraphs[name].url.replace(/\/graphql$/, '');
      log(`${name}: ${subgraphs[name].url}`);
    }
    const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, `${peers[n]}/graphql`])) as Record<SubgraphName, string>;
    // The isolated subgraphs' processes, once every peer's URL is known.
    for (const name of isolated) {
      const port = isolatedPorts.get(name)!;
      const env = isolatedEnv({
        name,
        keys: opts.keys,
        host,
        production: opts.production ?? false,
        subgraphUrls,
        dataDir: opts.dataDir,
        databaseUrl: serviceUrls[name],
        dbPoolMax: opts.dbPoolMax,
        // Its own Redis user if it uses Redis at all (ads does not: it is handed none).
        redisUrl: redisUrlOf(name),
        auditOrigin: opts.auditOrigin,
        logLevel: opts.logLevel,
      });
      spawnOf.set(name, { args: [name, '--port', String(port), '--host', host], env });
      const p = {
        name,
        url: urlOf(port),
        port,
        lines: [] as string[],
        get pid() {
          return this.child.pid!;
        },
      } as StackProcess;
      processes[name] = p;
      spawnChild(name);
    }
    const deadline = Date.now() + readyTimeout;
    await Promise.all(
      Object.values(processes).map(async (p) => {
        await waitReady({ label: p.name, url: p.url, child: p.child, lines: p.lines }, deadline);
        log(`${p.name}: ${p.url} (process ${p.pid})`);
      }),
    );
    const supergraphSdl = opts.supergraphSdl ?? readSupergraph();
    const gateway = await startGateway({
      supergraphSdl,
      subgraphUrls,
      // The gateway verifies no service's signature: it trusts no public key.
      keys: serviceKeys(opts.keys, 'gateway', []),
      tokenVerifier,
      production: opts.production ?? false,
      logger: createLogger('gateway', { destination: opts.logDestination, level: opts.logLevel }),
      ...opts.gateway,
      limits: { ...opts.gateway?.limits, ...opts.limits },
      trustedDocuments: { mode: opts.gateway?.trustedDocuments?.mode, manifest: opts.gateway?.trustedDocuments?.manifest ?? readManifest() },
      webApp: opts.webApp,
      maxSubscriptionsPerUser: opts.maxSubscriptionsPerUser,
      refusals: opts.refusals,
      port: opts.port,
      host: opts.host,
    });
    let stopping: Promise<void> | undefined;
    const stopSubgraph = async (name: SubgraphName) => {
      if (stopped.has(name)) return;
      stopped.add(name);
      if (isolated.has(name)) await stopChild(processes[name].child);
      else await subgraphs[name].stop();
    };
    const startOne = async (name: SubgraphName) => {
      if (!stopped.has(name)) return;
      if (stopping) throw new Error('the stack is stopped');
      if (isolated.has(name)) {
        const p = processes[name];
        if (!exited(p.child)) throw new Error(`${name} is still running`);
        spawnChild(name);
        await waitReady({ label: name, url: p.url, child: p.child, lines: p.lines }, Date.now() + readyTimeout);
        stopped.delete(name);
        return;
      }
      subgraphs[name] = await startSubgraph(SUBGRAPHS[name], {
        db: dbs[name],
        keys: keysOf(name),
        peers,
        // Same port: the gateway and the peers keep their URL for it.
        port: Number(new URL(subgraphs[name].url).port),
        host: opts.host,
        logger: createLogger(name, { destination: opts.logDestination, level: opts.logLevel }),
        redisUrl: redisUrlOf(name),
        auditOrigin: opts.auditOrigin,
      });
      stopped.delete(name);
    };
    return {
      url: gateway.url,
      gateway,
      subgraphs,
      dbs,
      subgraphUrls,
      processes,
      stopSubgraph,
      startSubgraph: startOne,
      async restartSubgraph(name: SubgraphName) {
        await stopSubgraph(name);
        await startOne(name);
      },
      // Idempotent: the gateway, then the subgraphs here and the isolated ones' processes (SIGTERM, then wait).
      stop() {
        stopping ??= (async () => {
          await gateway.stop();
          await stopAll();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
