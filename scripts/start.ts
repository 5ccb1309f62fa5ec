/**
 * npm start: migrates and seeds the SQLite databases under PAYGRAPH_DATA_DIR (or the PostgreSQL
 * schemas, each service on its own role: docs/database-roles.md) when empty, starts the five
 * subgraphs and the gateway, and prints the URLs and a token per seeded user.
 *
 * Ads (the advertising zone) runs in a child process of its own (scripts/serve.ts ads), whose
 * environment holds its own private key, the gateway's public key and its own database, and no
 * other secret (runtime/stack.ts isolatedEnv); the payments zone and the gateway run in this one.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { DEV_CLIENT_IDS, signToken } from '../lib/auth.js';
import { messageOf, say, warn } from '../lib/cli.js';
import { issuerTokensMessage, loadConfig, mintingKey, SUBGRAPH_NAMES } from '../lib/config.js';
import { loadKeyRing } from '../lib/transport/keys.js';
import { startTracing, stopTracing } from '../lib/tracing.js';
import { pgDatabaseOf } from '../runtime/database.js';
import { gatewayExtras } from '../runtime/service.js';
import { startStack } from '../runtime/stack.js';
import { buildFixture } from '../seeds/fixture.js';
import { buildWebApp, stackWebAppFor, webAppBuilt } from '../runtime/web-app.js';

const config = loadConfig();
// Traces only when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md#tracing): nothing is sent otherwise.
if (startTracing({ service: 'gateway' })) say('paygraph: exporting traces by OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)');
const databases = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, pgDatabaseOf(config, n)]));
const onPostgres = Object.values(databases).filter(Boolean).length;
say(
  `paygraph: data in ${onPostgres === 5 ? 'PostgreSQL, one schema per subgraph' : onPostgres > 0 ? `PostgreSQL for ${onPostgres} subgraph(s), SQLite under ${config.dataDir} for the others` : config.dataDir}`,
);
// The web client (web/): install builds it; a checkout whose install did not is built here, once.
if (!webAppBuilt()) {
  say('paygraph: building the web app (web/dist)...');
  // Without it the API still serves; /app then answers 503 saying how to build it.
  await buildWebApp().catch((err: unknown) => warn(`web app not built (${messageOf(err)}); the API runs without it`));
}
const stack = await startStack({
  dataDir: config.dataDir,
  databases,
  dbPoolMax: config.dbPoolMax,
  redisUrl: config.redisUrl,
  redisUrls: config.serviceRedisUrls,
  port: config.port,
  host: process.env.HOST ?? '127.0.0.1',
  tokenVerifier: config.tokenVerifier,
  // Every service's own key pair (the stack runs them all and hands each only its own):
  // from <data dir>/keys, created on first start, or PAYGRAPH_<SERVICE>_PRIVATE_KEY in production.
  keys: loadKeyRing(config.keys),
  production: config.production,
  // Trusted documents, metrics port, CORS origins, the shared rate limit (runtime/service.ts).
  gateway: gatewayExtras(config),
  maxSubscriptionsPerUser: config.maxSubscriptionsPerUser,
  auditOrigin: config.auditOrigin,
  // Zone isolation: the advertising zone's subgraph in a process of its own.
  isolate: ['ads'],
  log: (m) => say(`  ${m}`),
  webApp: stackWebAppFor(config),
});
say(`\npaygraph gateway ready at ${stack.url}`);
say(`web app: ${stack.url.replace(/\/graphql$/, '/app')}${config.production ? '' : ' (sign in as a seeded user)'}\n`);
const key = config.production ? null : mintingKey(config);
if (!config.production && key === null) say(`No tokens printed: ${issuerTokensMessage(config)}\n`);
if (key !== null) {
  say('Tokens for the seeded users (12 h; make more with `npm run -s token -- <handle> <purpose>`):');
  for (const u of buildFixture().users)
    say(`  ${u.handle.padEnd(6)} payments: ${await signToken(key, u.id, 'payments', '12h', { ...config.tokenVerifier, clientId: DEV_CLIENT_IDS.cli })}`);
  say(
    `\nTry:\n  curl -s ${stack.url} -H 'content-type: application/json' -H "authorization: Bearer $(npm run -s token -- alice payments)" \\\n    -d '{"query":"{ me { handle accounts { displayName balance { available { amount currency } } } } }"}'\n`,
  );
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping paygraph...`);
  void stack
    .stop()
    .then(stopTracing)
    .then(
      () => {
        say('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        warn(`error while stopping: ${messageOf(err, { stack: true })}`);
        process.exit(1);
      },
    );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
