/**
 * Configuration, read once from the environment, typed, with defaults.
 * Every variable is documented in docs/configuration.md.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { algorithmOfKey, DEFAULT_ISSUER, publicKeyPems, type TokenSigningKey, type TokenVerifierConfig } from './auth.js';
import { checkRolePrefix } from './db-roles.js';
import { devSecrets, type DevSecrets } from './dev-secrets.js';

export const SUBGRAPH_NAMES = ['accounts', 'payments', 'merchants', 'alerts', 'ads'] as const;
export type SubgraphName = (typeof SUBGRAPH_NAMES)[number];

/** Every paygraph service: the gateway and the subgraphs. Each has a key pair of its own (lib/transport/keys.ts). */
export const SERVICE_NAMES = ['gateway', ...SUBGRAPH_NAMES] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * The services that use Redis when run as several processes (lib/redis.ts): every subgraph's
 * shared replay protection, alerts' bus, payments' feed wake-ups, and the gateways' shared
 * mutation rate limit (gateway/rate-limit.ts: its ACL user may touch its counters only). Never
 * ads: the advertising zone gets no Redis at all.
 */
export const REDIS_SERVICES: readonly ServiceName[] = ['gateway', 'accounts', 'payments', 'merchants', 'alerts'];

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
   * How the gateway verifies client tokens (see tokenVerifierFromEnv): an HS256 secret
   * (PAYGRAPH_JWT_SECRET, or in development this install's generated one), or an issuer's public
   * key(s) (PAYGRAPH_JWT_PUBLIC_KEY, PAYGRAPH_JWT_PUBLIC_KEY_FILE) or JWKS (PAYGRAPH_JWT_JWKS_URL),
   * which hold no minting secret. Issuer and audience checks: PAYGRAPH_JWT_ISSUER, PAYGRAPH_JWT_AUDIENCE.
   */
  tokenVerifier: TokenVerifierConfig;
  /**
   * Development only: an issuer's private key file (PAYGRAPH_JWT_PRIVATE_KEY_FILE) with which
   * `npm run token` and `npm start` mint tokens when the verifier is a public key. Read by those
   * scripts only (mintingKey), never by a service.
   */
  jwtPrivateKeyFile: string | undefined;
  /**
   * The Redis URL each service connects with: its own (PAYGRAPH_<SERVICE>_REDIS_URL, its ACL user),
   * else REDIS_URL; always undefined for ads, which uses no Redis.
   */
  serviceRedisUrls: Record<ServiceName, string | undefined>;
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
  /**
   * Trusted documents (gateway/trusted-documents.ts): PAYGRAPH_TRUSTED_DOCUMENTS `required` (only
   * the manifest's operations run; the default in production) or `any` (the default otherwise),
   * and the manifest file, PAYGRAPH_TRUSTED_DOCUMENTS_MANIFEST (default: operations/manifest.json).
   */
  trustedDocuments: { mode: 'required' | 'any'; manifestFile: string | undefined };
  /** PAYGRAPH_AUDIT_READS_PER_MINUTE: points one client address may spend on /audit/* per minute, across every gateway (default 3,000, gateway/audit-routes.ts). */
  auditReadsPerMinute: number | undefined;
  /** PAYGRAPH_MUTATIONS_PER_MINUTE: mutations a user may send per minute, across every gateway (default 120, gateway/limits.ts). */
  mutationsPerMinute: number | undefined;
  /** PAYGRAPH_METRICS_PORT: the gateway serves /metrics on this port only (not the public one); unset: beside /graphql. */
  metricsPort: number | undefined;
  /**
   * PAYGRAPH_CORS_ORIGINS: the browser origins allowed to call the gateway (comma-separated, each
   * scheme://host[:port]); unset: none in production, loopback origins (any port) in development.
   */
  corsOrigins: string[] | undefined;
  /** Subscriptions one user may hold at once on one gateway (PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER, default 10). */
  maxSubscriptionsPerUser: number;
  /**
   * PAYGRAPH_AUDIT_ORIGIN: the transparency log's origin, the first line of every checkpoint and
   * the name of its verifier key (docs/audit.md); unset: `paygraph.dev/audit/<install id>`.
   */
  auditOrigin: string | undefined;
}

/**
 * A checkpoint origin as C2SP tlog-checkpoint and signed-note accept it (it is also the key's
 * name): a schema-less URL, here printable ASCII without spaces or `+`, at most 255 characters.
 */
export function checkAuditOrigin(origin: string, variable = 'PAYGRAPH_AUDIT_ORIGIN'): string {
  if (!/^[\x21-\x2a\x2c-\x7e]{1,255}$/.test(origin))
    throw new Error(
      `${variable} must be a schema-less URL such as log.example.com/paygraph (printable ASCII, no spaces, no "+", at most 255 characters), got ${JSON.stringify(origin)}`,
    );
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(origin))
    throw new Error(`${variable} is schema-less (C2SP tlog-checkpoint): ${origin.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')}, not ${origin}`);
  return origin;
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

/**
 * Where each service's keys come from (read by lib/transport/keys.ts): set here from the
 * environment and the data directory, so that the configuration depends on nothing above it.
 */
export interface KeySource {
  /** NODE_ENV=production: every key must come from the environment; nothing is generated. */
  production: boolean;
  /** The development key directory (`<data dir>/keys`). */
  dir: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** The development key directory of an install (lib/transport/keys.ts): `<data dir>/keys`. */
export function keyDirOf(dataDir: string): string {
  return path.join(dataDir, 'keys');
}

/**
 * The token verifier the environment configures. At most one of PAYGRAPH_JWT_SECRET,
 * PAYGRAPH_JWT_PUBLIC_KEY / PAYGRAPH_JWT_PUBLIC_KEY_FILE (one or the other) and
 * PAYGRAPH_JWT_JWKS_URL may be set: a gateway verifies with a secret or with an issuer's key,
 * never both. None set: in development this install's generated HS256 secret, in production an
 * error. No default ever points anywhere: a JWKS URL is fetched only when an operator sets it.
 */
export function tokenVerifierFromEnv(env: NodeJS.ProcessEnv, production: boolean, devSecret: () => string): TokenVerifierConfig {
  const secretValue = nonEmpty(env.PAYGRAPH_JWT_SECRET);
  const pem = nonEmpty(env.PAYGRAPH_JWT_PUBLIC_KEY);
  const pemFile = nonEmpty(env.PAYGRAPH_JWT_PUBLIC_KEY_FILE);
  const jwksUrl = nonEmpty(env.PAYGRAPH_JWT_JWKS_URL);
  if (pem !== undefined && pemFile !== undefined) throw new Error('set PAYGRAPH_JWT_PUBLIC_KEY or PAYGRAPH_JWT_PUBLIC_KEY_FILE, not both');
  const given = [
    secretValue !== undefined && 'PAYGRAPH_JWT_SECRET',
    pem !== undefined && 'PAYGRAPH_JWT_PUBLIC_KEY',
    pemFile !== undefined && 'PAYGRAPH_JWT_PUBLIC_KEY_FILE',
    jwksUrl !== undefined && 'PAYGRAPH_JWT_JWKS_URL',
  ].filter((v): v is string => typeof v === 'string');
  if (given.length > 1)
    throw new Error(
      `${given.join(' and ')} are both set: the gateway verifies tokens either with a secret or with an issuer's public key, never both; set one`,
    );
  const checks = {
    issuer: nonEmpty(env.PAYGRAPH_JWT_ISSUER) ?? DEFAULT_ISSUER,
    ...(nonEmpty(env.PAYGRAPH_JWT_AUDIENCE) ? { audience: env.PAYGRAPH_JWT_AUDIENCE! } : {}),
  };
  if (pem !== undefined || pemFile !== undefined) {
    const where = pem !== undefined ? 'PAYGRAPH_JWT_PUBLIC_KEY' : `PAYGRAPH_JWT_PUBLIC_KEY_FILE (${pemFile})`;
    let text: string;
    try {
      text = pem ?? fs.readFileSync(pemFile!, 'utf8');
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
    }
    if (/PRIVATE KEY/.test(text)) throw new Error(`${where} holds a private key; give the gateway the issuer's public key only (SPKI PEM)`);
    try {
      const publicKeys = publicKeyPems(text);
      // Checked here, so a bad key fails at start, naming the variable.
      for (const k of publicKeys) algorithmOfKey(createPublicKey(k));
      return { kind: 'public-key', publicKeys, ...checks };
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(jwksUrl);
    } catch {
      throw new Error(`PAYGRAPH_JWT_JWKS_URL is not a URL: "${jwksUrl}"`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`PAYGRAPH_JWT_JWKS_URL must be an http(s) URL, got ${url.protocol}//...`);
    if (production && url.protocol !== 'https:' && !isLoopbackHost(url.hostname))
      throw new Error(
        'PAYGRAPH_JWT_JWKS_URL must be https:// in production (plain http only on loopback): whoever can answer it decides which tokens are valid',
      );
    return { kind: 'jwks', jwksUrl, ...checks };
  }
  if (secretValue !== undefined) return { kind: 'secret', secret: secretValue, ...checks };
  if (production)
    throw new Error(
      "PAYGRAPH_JWT_SECRET, PAYGRAPH_JWT_PUBLIC_KEY(_FILE) or PAYGRAPH_JWT_JWKS_URL must be set when NODE_ENV=production (an issuer's public key holds no minting secret)",
    );
  return { kind: 'secret', secret: devSecret(), ...checks };
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * What `npm run token` and `npm start` mint with: the HS256 secret when the verifier is a secret;
 * with an issuer's key, the development private key (PAYGRAPH_JWT_PRIVATE_KEY_FILE) if one is
 * given, else null: tokens then come from the issuer.
 */
export function mintingKey(config: Config): TokenSigningKey | null {
  if (config.tokenVerifier.kind === 'secret') return config.tokenVerifier.secret;
  if (config.jwtPrivateKeyFile === undefined) return null;
  const where = `PAYGRAPH_JWT_PRIVATE_KEY_FILE (${config.jwtPrivateKeyFile})`;
  try {
    const privateKey = createPrivateKey(fs.readFileSync(config.jwtPrivateKeyFile, 'utf8'));
    return { alg: algorithmOfKey(privateKey), privateKey };
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }
}

/** What the minting scripts say when the gateway verifies with an issuer's key and no development private key is given. */
export function issuerTokensMessage(config: Config): string {
  const v = config.tokenVerifier;
  const source = v.kind === 'jwks' ? `the JWKS at ${v.jwksUrl}` : 'PAYGRAPH_JWT_PUBLIC_KEY(_FILE)';
  return (
    `the gateway verifies tokens with an issuer's public key (${source}), so paygraph cannot mint them: ` +
    `get tokens from that issuer (iss "${v.issuer}"${v.audience ? `, aud "${v.audience}"` : ''}, EdDSA or RS256). ` +
    'For local development, set PAYGRAPH_JWT_PRIVATE_KEY_FILE to the private key of that public key, or unset the key variables to use the HS256 development secret.'
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.length > 0 ? value : undefined;
}

/**
 * A URL variable of one of `protocols`: unset, or a URL of that kind (checked here, so a typo
 * fails at start, naming the variable; the value itself, which may hold a password, is not echoed).
 */
function urlVariable(env: NodeJS.ProcessEnv, name: string, protocols: readonly string[], kind: string, example: string): string | undefined {
  const value = nonEmpty(env[name]);
  if (value === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new Error(`${name} is not a URL (expected ${example})`);
  }
  if (!protocols.includes(protocol)) throw new Error(`${name} must be a ${kind} URL, got ${protocol}//...`);
  return value;
}

const postgresUrl = (env: NodeJS.ProcessEnv, name: string) =>
  urlVariable(env, name, ['postgres:', 'postgresql:'], 'postgres://', 'postgres://user:password@host:port/database');
const redisUrl = (env: NodeJS.ProcessEnv, name: string) =>
  urlVariable(env, name, ['redis:', 'rediss:'], 'redis:// or rediss://', 'redis://user:password@host:port');

export interface LoadOptions {
  /**
   * Whether this process verifies client tokens (default true): only the gateway does. A subgraph
   * process (scripts/serve.ts) passes false: the token secret or key is then neither required in
   * production nor read from the install's dev-secrets.json, and reading Config.tokenVerifier throws.
   */
  tokens?: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Config {
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
  const maxSubscriptionsPerUser = env.PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER ? Number(env.PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER) : 10;
  if (!Number.isSafeInteger(maxSubscriptionsPerUser) || maxSubscriptionsPerUser < 1)
    throw new Error(`PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER must be an integer >= 1, got ${env.PAYGRAPH_MAX_SUBSCRIPTIONS_PER_USER}`);
  const dataDir = path.resolve(env.PAYGRAPH_DATA_DIR ?? './data');
  const jwtPrivateKeyFile = nonEmpty(env.PAYGRAPH_JWT_PRIVATE_KEY_FILE);
  if (jwtPrivateKeyFile !== undefined && production)
    throw new Error('PAYGRAPH_JWT_PRIVATE_KEY_FILE is for development only: in production tokens come from the issuer, and no paygraph process holds its key');
  let dev: DevSecrets | undefined;
  const devSecret = (key: keyof DevSecrets) => () => (dev ??= devSecrets(dataDir))[key];
  const config: Config = {
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
    // Replaced below for a process that verifies no tokens (opts.tokens === false).
    tokenVerifier: undefined as unknown as Config['tokenVerifier'],
    jwtPrivateKeyFile,
    keys: { production, dir: keyDirOf(dataDir), env },
    subgraphUrls,
    trustedDocuments: {
      mode: trustedDocumentsMode(env.PAYGRAPH_TRUSTED_DOCUMENTS, production),
      manifestFile: nonEmpty(env.PAYGRAPH_TRUSTED_DOCUMENTS_MANIFEST),
    },
    metricsPort: optionalPort(env, 'PAYGRAPH_METRICS_PORT'),
    mutationsPerMinute: positiveInteger(env, 'PAYGRAPH_MUTATIONS_PER_MINUTE'),
    auditReadsPerMinute: positiveInteger(env, 'PAYGRAPH_AUDIT_READS_PER_MINUTE'),
    corsOrigins: corsOrigins(env.PAYGRAPH_CORS_ORIGINS),
    maxSubscriptionsPerUser,
    auditOrigin: env.PAYGRAPH_AUDIT_ORIGIN === undefined || env.PAYGRAPH_AUDIT_ORIGIN === '' ? undefined : checkAuditOrigin(env.PAYGRAPH_AUDIT_ORIGIN),
  };
  if (opts.tokens === false)
    Object.defineProperty(config, 'tokenVerifier', {
      get() {
        throw new Error('this process verifies no client tokens: only the gateway does');
      },
    });
  else config.tokenVerifier = tokenVerifierFromEnv(env, production, devSecret('jwtSecret'));
  return config;
}

function trustedDocumentsMode(value: string | undefined, production: boolean): 'required' | 'any' {
  const v = nonEmpty(value);
  if (v === undefined) return production ? 'required' : 'any';
  if (v !== 'required' && v !== 'any') throw new Error(`PAYGRAPH_TRUSTED_DOCUMENTS must be "required" or "any", got "${v}"`);
  return v;
}

function optionalPort(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = nonEmpty(env[name]);
  if (v === undefined) return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number, got "${v}"`);
  return port;
}

/** PAYGRAPH_CORS_ORIGINS: each entry an origin (scheme://host[:port], no path), or `*` alone for any origin (without credentials). */
export function corsOrigins(value: string | undefined): string[] | undefined {
  const v = nonEmpty(value);
  if (v === undefined) return undefined;
  const list = v
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  for (const o of list) {
    if (o === '*') continue;
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new Error(`PAYGRAPH_CORS_ORIGINS: not an origin: "${o}" (expected e.g. https://app.example.com)`);
    }
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o.replace(/\/$/, ''))
      throw new Error(`PAYGRAPH_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port], nothing after it)`);
  }
  return list.map((o) => o.replace(/\/$/, ''));
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = nonEmpty(env[name]);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}
