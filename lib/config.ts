/**
 * Configuration, read once from the environment, typed, with defaults.
 * Every variable is documented in the README's Configuration section.
 */
import path from 'node:path';

export const SUBGRAPH_NAMES = ['accounts', 'payments', 'merchants', 'alerts', 'ads'] as const;
export type SubgraphName = (typeof SUBGRAPH_NAMES)[number];

const DEV_JWT_SECRET = 'paygraph-dev-jwt-secret-do-not-use-in-production';
const DEV_GATEWAY_SECRET = 'paygraph-dev-gateway-secret-do-not-use-in-production';

export interface Config {
  production: boolean;
  port: number;
  dataDir: string;
  /** PostgreSQL URL (DATABASE_URL); SQLite files under dataDir when unset. */
  databaseUrl: string | undefined;
  /** Redis URL (REDIS_URL): cross-process fan-out of charge alerts; in-process only when unset. */
  redisUrl: string | undefined;
  jwtSecret: string;
  gatewaySecret: string;
  /** Subgraph URL overrides (PAYGRAPH_<NAME>_URL); otherwise http://127.0.0.1:<PORT+i>/graphql. */
  subgraphUrls: Record<SubgraphName, string>;
}

function required(env: NodeJS.ProcessEnv, name: string, devDefault: string, production: boolean): string {
  const value = env[name];
  if (value && value.length > 0) return value;
  if (production) throw new Error(`${name} must be set when NODE_ENV=production`);
  return devDefault;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const port = env.PORT ? Number.parseInt(env.PORT, 10) : 4000;
  if (!Number.isInteger(port) || port < 0 || port > 65530) throw new Error(`PORT must be an integer port, got ${env.PORT}`);
  const subgraphUrls = {} as Record<SubgraphName, string>;
  SUBGRAPH_NAMES.forEach((name, i) => {
    subgraphUrls[name] = env[`PAYGRAPH_${name.toUpperCase()}_URL`] ?? `http://127.0.0.1:${port + i + 1}/graphql`;
  });
  return {
    production,
    port,
    dataDir: path.resolve(env.PAYGRAPH_DATA_DIR ?? './data'),
    databaseUrl: env.DATABASE_URL && env.DATABASE_URL.length > 0 ? env.DATABASE_URL : undefined,
    redisUrl: env.REDIS_URL && env.REDIS_URL.length > 0 ? env.REDIS_URL : undefined,
    jwtSecret: required(env, 'PAYGRAPH_JWT_SECRET', DEV_JWT_SECRET, production),
    gatewaySecret: required(env, 'PAYGRAPH_GATEWAY_SECRET', DEV_GATEWAY_SECRET, production),
    subgraphUrls,
  };
}
