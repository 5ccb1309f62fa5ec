/**
 * Runs ONE paygraph service in this process, for scale-out (docs/scale.md):
 *
 *   tsx scripts/serve.ts <gateway|accounts|payments|merchants|alerts|ads> [--port N] [--host H]
 *   tsx scripts/serve.ts migrate            # migrate + seed every subgraph's database, then exit
 *
 * Everything else comes from the environment (lib/config.ts): DATABASE_URL or
 * PAYGRAPH_<NAME>_DATABASE_URL (the service's own role; `migrate` also takes the admin and owner
 * URLs, docs/database-roles.md), REDIS_URL, PAYGRAPH_<NAME>_URL (a comma-separated list for a
 * subgraph with several processes), the secrets, LOG_LEVEL. Default port: PORT for the gateway,
 * the port of the subgraph's (first) PAYGRAPH_<NAME>_URL for a subgraph.
 *
 * Stops cleanly on SIGINT/SIGTERM. With PAYGRAPH_EXIT_WITH_STDIN=1 it also stops when its stdin
 * closes: a supervisor (runtime/cluster.ts) that dies, even by SIGKILL, leaves no orphan behind.
 *
 * A running service logs its start, stop and failures through pino, like everything the service
 * itself logs (one JSON stream per process); usage errors and `migrate` print for a person.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { fail, messageOf, say } from '../lib/cli.js';
import { loadConfig, SUBGRAPH_NAMES } from '../lib/config.js';
import { pgDatabaseOf } from '../runtime/database.js';
import { createLogger } from '../lib/log.js';
import { startTracing, stopTracing } from '../lib/tracing.js';
import { isServiceName, SERVICE_NAMES } from '../runtime/cluster.js';
import { migrateAll, serveService, type RunningService } from '../runtime/service.js';

const USAGE = `usage: serve.ts <${SERVICE_NAMES.join('|')}|migrate> [--port N] [--host H]`;

/** A mistake in the command line or the environment: what is wrong, then how to call this. */
function usage(problem: string): never {
  fail(`serve: ${problem}\n${USAGE}`, 2);
}

const args = process.argv.slice(2);
const what = args[0];
let port: number | undefined;
let host = process.env.HOST ?? '127.0.0.1';
for (let i = 1; i < args.length; i += 2) {
  const flag = args[i];
  const value = args[i + 1];
  if (value === undefined) usage(`${flag} needs a value`);
  if (flag === '--port') {
    port = Number.parseInt(value, 10);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || String(port) !== value) usage(`--port must be a port number, got ${value}`);
  } else if (flag === '--host') host = value;
  else usage(`unknown option ${flag}`);
}
if (!what || (what !== 'migrate' && !isServiceName(what))) usage(what ? `unknown service "${what}"` : 'which service?');

let config;
try {
  // Only the gateway verifies tokens: a subgraph (or the migrate step) is not given the JWT secret.
  config = loadConfig(process.env, { tokens: what === 'gateway' });
} catch (err) {
  usage(messageOf(err));
}

if (what === 'migrate') {
  const onPostgres = SUBGRAPH_NAMES.filter((n) => pgDatabaseOf(config, n)).length;
  say(`serve: migrating ${onPostgres === 0 ? config.dataDir : onPostgres === 5 ? 'PostgreSQL' : `PostgreSQL (${onPostgres} subgraphs) and ${config.dataDir}`}`);
  try {
    await migrateAll(config, (m) => say(`  ${m}`));
  } catch (err) {
    fail(`serve migrate: failed: ${messageOf(err)}`, 1);
  }
  process.exit(0);
}

const log = createLogger(what);
// Traces only when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md#tracing): nothing is sent otherwise.
if (startTracing({ service: what })) log.info('exporting traces by OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)');

let service: RunningService | null = null;
let stopping = false;
const shutdown = (reason: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, 'stopping');
  // A second signal while stopping forces the exit.
  const force = () => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  void (service?.stop() ?? Promise.resolve()).then(stopTracing).then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'error while stopping');
      process.exit(1);
    },
  );
};
process.once('SIGINT', () => shutdown('SIGINT'));
process.once('SIGTERM', () => shutdown('SIGTERM'));
if (process.env.PAYGRAPH_EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', () => shutdown('stdin closed (supervisor gone)'));
  process.stdin.on('error', () => shutdown('stdin error (supervisor gone)'));
  process.stdin.resume();
}

try {
  service = await serveService(what, config, { port, host, log: (m) => log.info(m) });
} catch (err) {
  log.error({ err }, 'could not start');
  process.exit(1);
}
if (stopping) {
  // A signal arrived while starting: stop what just started.
  await service.stop();
  process.exit(0);
}
log.info({ url: service.url }, 'listening');
