/**
 * Configuration, read once from the environment, typed, with defaults.
 * Every variable is documented in docs/configuration.md.
 */
import path from 'node:path';
import { checkRolePrefix } from './db-roles.js';
import { devSecrets, type DevSecrets } from './dev-secrets.js';
import type { KeySource } from './transport/keys.js';

export const SUBGRAPH_NAMES = ['accounts', 'payments', 'merchants', 'alerts', 'ads'] as const;
export type SubgraphName = (typeof SUBGRAPH_NAMES)[number];

/** Every paygraph service: the gateway and the subgraphs. Each has a key pair of its own (lib/transport/keys.ts). */
export const SERVICE_NAMES = ['gateway', ...SUBGRAPH_NAMES] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * The services that use Redis when run as several processes (lib/redis.ts): every subgraph's
 * shared replay protection, alerts' bus, payments' feed wake-ups. Not the gateway (it fans nothing
 * out and verifies no signature) and never ads: the advertising zone gets no Redis at all.
 */
export const REDIS_SERVICES: readonly ServiceName[] = ['accounts', 'payments', 'merchants', 'alerts'];

export function usesRedis(service: ServiceName): boolean {
  return REDIS_SERVICES.includes(service);
}

/** The variable of a service's own Redis URL (its ACL user, docs/scale.md): PAYGRAPH_<SERVICE>_REDIS_URL. */
export const redisUrlVariable = (service: ServiceName): string => `PAYGRAPH_${service.toUpperCase()}_REDIS_URL`;

export function isServiceName(value: unknown): value is ServiceName {
  return typeof value === 'string' && (SERVICE_NAMES as readonly string[]).includes(value);
}

export interface Config {
  production: boolean;
  port: number;
  dataDir: string;
  /**
   * PostgreSQL database (DATABASE_URL): where the subgraphs without a URL of their own keep their
   * schema, each service connecting as its own role there (docs/database-roles.md); SQLite files
   * under dataDir when neither this nor a subgraph's URL is set.
   */
  databaseUrl: string | undefined;
  /**
   * The admin connection that creates the database roles (PAYGRAPH_DATABASE_ADMIN_URL; in
   * development DATABASE_URL when that is unset); used by migrations only, never by a service.
   */
  databaseAdminUrl: string | undefined;
  /** Start of the role names paygraph creates (PAYGRAPH_DATABASE_ROLE_PREFIX); undefined: the database's name. */
  databaseRolePrefix: string | undefined;
  /**
   * Each subgraph's service role URL (PAYGRAPH_<NAME>_DATABASE_URL); undefined: the role paygraph
   * provisions on DATABASE_URL's database (runtime/database.ts). Lets one subgraph move to its own server.
   */
  subgraphDatabaseUrls: Record<SubgraphName, string | undefined>;
  /** Each subgraph's schema owner URL (PAYGRAPH_<NAME>_MIGRATE_DATABASE_URL): what its migrations run as. */
  subgraphMigrateDatabaseUrls: Record<SubgraphName, string | undefined>;
  /** Connections per knex pool on PostgreSQL (PAYGRAPH_DB_POOL_MAX, default 10): one pool per subgraph per process. */
  dbPoolMax: number;
  /** Redis URL (REDIS_URL): cross-process fan-out of charge alerts; in-process only when unset. */
  redisUrl: string | undefined;
  /**
   * The Redis URL each service connects with: its own (PAYGRAPH_<SERVICE>_REDIS_URL, its ACL user),
   * else REDIS_URL; always undefined for the services that use no Redis (the gateway, ads).
   */
  serviceRedisUrls: Record<ServiceName, string | undefined>;
  jwtSecret: string;
  /**
   * Where each service's Ed25519 signing keys come from (lib/transport/keys.ts loadServiceKeys):
   * PAYGRAPH_<SERVICE>_PRIVATE_KEY(_FILE) and PAYGRAPH_<SERVICE>_PUBLIC_KEY(_FILE), required in
   * production; in development, else the install's key directory `<data dir>/keys`. Read when a
   * service starts, and only the keys that service needs.
   */
  keys: KeySource;
  /**
   * Subgraph URL overrides (PAYGRAPH_<NAME>_URL); otherwise http://127.0.0.1:<PORT+i>/graphql.
   * May be a comma-separated list of several processes of one subgraph (see parseUrlList): the
   * gateway's data source spreads requests over them (gateway/data-source.ts).
   */
  subgraphUrls: Record<SubgraphName, string>;
}

/**
 * The URLs of a `PAYGRAPH_<NAME>_URL` value: one URL, or several separated by commas (whitespace
 * around them ignored). Throws on an empty list or a value that is not an http(s) URL.
 */
export function parseUrlList(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  if (urls.length === 0) throw new Error(`empty URL list "${value}"`);
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`not a URL: "${u}" (in "${value}")`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`not an http(s) URL: "${u}"`);
  }
  return urls;
}

/** A subgraph's base URL (what internal calls and health checks append to): its URL without /graphql. */
export function baseUrlOf(graphqlUrl: string): string {
  return graphqlUrl.replace(/\/graphql$/, '');
}

/** The development key directory of an install (lib/transport/keys.ts): `<data dir>/keys`. */
export function keyDirOf(dataDir: string): string {
  return path.join(dataDir, 'keys');
}

/** A secret from the environment; in production it must be set, in development it defaults to this install's own. */
function secret(env: NodeJS.ProcessEnv, name: string, production: boolean, devDefault: () => string): string {
  const value = env[name];
  if (value && value.length > 0) return value;
  if (production) throw new Error(`${name} must be set when NODE_ENV=production`);
  return devDefault();
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.length > 0 ? value : undefined;
}

/** A PostgreSQL URL variable: unset, or a postgres:// URL (checked here, so a typo fails at start, naming the variable). */
function postgresUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = nonEmpty(env[name]);
  if (value === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new Error(`${name} is not a URL (expected postgres://user:password@host:port/database)`);
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') throw new Error(`${name} must be a postgres:// URL, got ${protocol}//...`);
  return value;
}

function redisUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = nonEmpty(env[name]);
  if (value === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new Error(`${name} is not a URL (expected redis://user:password@host:port)`);
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`${name} must be a redis:// or rediss:// URL, got ${protocol}//...`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const port = env.PORT ? Number.parseInt(env.PORT, 10) : 4000;
  if (!Number.isInteger(port) || port < 0 || port > 65530) throw new Error(`PORT must be an integer port, got ${env.PORT}`);
  const subgraphUrls = {} as Record<SubgraphName, string>;
  const databaseUrl = postgresUrl(env, 'DATABASE_URL');
  const databaseAdminUrl = postgresUrl(env, 'PAYGRAPH_DATABASE_ADMIN_URL') ?? (production ? undefined : databaseUrl);
  const databaseRolePrefix = nonEmpty(env.PAYGRAPH_DATABASE_ROLE_PREFIX);
  if (databaseRolePrefix !== undefined) checkRolePrefix(databaseRolePrefix);
  const subgraphDatabaseUrls = {} as Record<SubgraphName, string | undefined>;
  const subgraphMigrateDatabaseUrls = {} as Record<SubgraphName, string | undefined>;
  SUBGRAPH_NAMES.forEach((name, i) => {
    const urls = nonEmpty(env[`PAYGRAPH_${name.toUpperCase()}_URL`]);
    // Validated here, so a typo fails at start, naming the variable.
    if (urls !== undefined) {
      try {
        parseUrlList(urls);
      } catch (err) {
        throw new Error(`PAYGRAPH_${name.toUpperCase()}_URL: ${(err as Error).message}`, { cause: err });
      }
    }
    subgraphUrls[name] = urls ?? `http://127.0.0.1:${port + i + 1}/graphql`;
    subgraphDatabaseUrls[name] = postgresUrl(env, `PAYGRAPH_${name.toUpperCase()}_DATABASE_URL`);
    subgraphMigrateDatabaseUrls[name] = postgresUrl(env, `PAYGRAPH_${name.toUpperCase()}_MIGRATE_DATABASE_URL`);
  });
  const dbPoolMax = env.PAYGRAPH_DB_POOL_MAX ? Number.parseInt(env.PAYGRAPH_DB_POOL_MAX, 10) : 10;
  if (!Number.isInteger(dbPoolMax) || dbPoolMax < 2)
    throw new Error(`PAYGRAPH_DB_POOL_MAX must be an integer >= 2 (migrations hold one connection for their lock), got ${env.PAYGRAPH_DB_POOL_MAX}`);
  const dataDir = path.resolve(env.PAYGRAPH_DATA_DIR ?? './data');
  let dev: DevSecrets | undefined;
  const devSecret = (key: keyof DevSecrets) => () => (dev ??= devSecrets(dataDir))[key];
  return {
    production,
    port,
    dataDir,
    databaseUrl,
    databaseAdminUrl,
    databaseRolePrefix,
    subgraphDatabaseUrls,
    subgraphMigrateDatabaseUrls,
    dbPoolMax,
    redisUrl: nonEmpty(env.REDIS_URL),
    serviceRedisUrls: Object.fromEntries(
      SERVICE_NAMES.map((s) => [s, usesRedis(s) ? (redisUrl(env, redisUrlVariable(s)) ?? nonEmpty(env.REDIS_URL)) : undefined]),
    ) as Record<ServiceName, string | undefined>,
    jwtSecret: secret(env, 'PAYGRAPH_JWT_SECRET', production, devSecret('jwtSecret')),
    keys: { production, dir: keyDirOf(dataDir), env },
    subgraphUrls,
  };
}
