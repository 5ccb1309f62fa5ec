/**
 * Runs ONE paygraph service in this process, for scale-out (docs/scale.md):
 *
 *   tsx scripts/serve.ts <gateway|accounts|payments|merchants|alerts|ads> [--port N] [--host H]
 *   tsx scripts/serve.ts migrate            # migrate + seed every subgraph's database, then exit
 *
 * Everything else comes from the environment (lib/config.ts): DATABASE_URL or
 * PAYGRAPH_<NAME>_DATABASE_URL, REDIS_URL, PAYGRAPH_<NAME>_URL (a comma-separated list for a
 * subgraph with several processes), the secrets, LOG_LEVEL. Default port: PORT for the gateway,
 * the port of the subgraph's (first) PAYGRAPH_<NAME>_URL for a subgraph.
 *
 * Stops cleanly on SIGINT/SIGTERM. With PAYGRAPH_EXIT_WITH_STDIN=1 it also stops when its stdin
 * closes: a supervisor (lib/cluster.ts) that dies, even by SIGKILL, leaves no orphan behind.
 */
import { loadConfig } from '../lib/config.js';
import { isServiceName, SERVICE_NAMES } from '../runtime/cluster.js';
import { migrateAll, serveService, type RunningService } from '../runtime/service.js';

const USAGE = `usage: serve.ts <${SERVICE_NAMES.join('|')}|migrate> [--port N] [--host H]`;

function fail(message: string): never {
  console.error(`serve: ${message}\n${USAGE}`);
  process.exit(2);
}

const args = process.argv.slice(2);
const what = args[0];
let port: number | undefined;
let host = process.env.HOST ?? '127.0.0.1';
for (let i = 1; i < args.length; i += 2) {
  const flag = args[i];
  const value = args[i + 1];
  if (value === undefined) fail(`${flag} needs a value`);
  if (flag === '--port') {
    port = Number.parseInt(value, 10);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || String(port) !== value) fail(`--port must be a port number, got ${value}`);
  } else if (flag === '--host') host = value;
  else fail(`unknown option ${flag}`);
}
if (!what || (what !== 'migrate' && !isServiceName(what))) fail(what ? `unknown service "${what}"` : 'which service?');

let config;
try {
  config = loadConfig();
} catch (err) {
  fail((err as Error).message);
}

if (what === 'migrate') {
  console.log(`serve: migrating ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : config.dataDir}`);
  try {
    await migrateAll(config, (m) => console.log(`  ${m}`));
  } catch (err) {
    console.error(`serve migrate: failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  process.exit(0);
}

let service: RunningService | null = null;
let stopping = false;
const shutdown = (reason: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`serve ${what}: ${reason}: stopping`);
  // A second signal while stopping forces the exit.
  const force = () => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  void (service?.stop() ?? Promise.resolve()).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`serve ${what}: error while stopping`, err);
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
  service = await serveService(what, config, { port, host, log: (m) => console.error(`serve ${what}: ${m}`) });
} catch (err) {
  console.error(`serve ${what}: could not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (stopping) {
  // A signal arrived while starting: stop what just started.
  await service.stop();
  process.exit(0);
}
console.error(`serve ${what}: listening at ${service.url}`);
