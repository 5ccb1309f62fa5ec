/**
 * npm run start:cluster: paygraph scaled out on one machine (docs/scale.md), against the
 * PostgreSQL of DATABASE_URL and the Redis of REDIS_URL (both required): two gateways, two
 * payments and two alerts processes, one of each other subgraph, every one a child process
 * (scripts/serve.ts) with its output prefixed by its name. Migrates and seeds once, waits until
 * every process answers /ready, prints the URLs; restarts a process that dies on its own (with
 * back-off, logged); SIGINT/SIGTERM stops them all.
 *
 * Ports: PORT (default 4000) and up, as in runtime/cluster.ts (gateways on PORT and PORT+10).
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { fail, messageOf, say, warn } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';
import { startCluster, type Cluster } from '../runtime/cluster.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  fail(`start:cluster: ${messageOf(err)}`, 2);
}
const missing = [
  !config.databaseUrl && 'DATABASE_URL (a PostgreSQL URL, e.g. postgres://user:pass@127.0.0.1:5432/paygraph)',
  !config.redisUrl && 'REDIS_URL (e.g. redis://127.0.0.1:6379)',
].filter(Boolean);
if (missing.length)
  fail(`start:cluster needs a shared PostgreSQL and Redis; set:\n  ${missing.join('\n  ')}\n(one process with SQLite: npm start; see docs/scale.md)`, 2);

const colors = [36, 32, 33, 35, 34, 31, 96, 92, 93, 95];
const colorOf = new Map<string, number>();
const tty = process.stdout.isTTY === true;
const prefix = (label: string) => {
  if (!colorOf.has(label)) colorOf.set(label, colors[colorOf.size % colors.length]!);
  const text = `[${label}]`.padEnd(13);
  return tty ? `\x1b[${colorOf.get(label)}m${text}\x1b[0m` : text;
};

let cluster: Cluster | null = null;
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping the cluster...`);
  // Before the cluster is up, exiting is enough: every child stops when its stdin (our pipe) closes.
  void (cluster?.stop() ?? Promise.resolve()).then(
    () => {
      say('cluster stopped');
      process.exit(0);
    },
    (err: unknown) => {
      warn(`error while stopping the cluster: ${messageOf(err, { stack: true })}`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

say(`paygraph cluster: PostgreSQL ${redact(config.databaseUrl!)}, Redis ${redact(config.redisUrl!)}`);
try {
  cluster = await startCluster({
    databaseUrl: config.databaseUrl!,
    redisUrl: config.redisUrl!,
    basePort: config.port,
    host: process.env.HOST ?? '127.0.0.1',
    dataDir: config.dataDir,
    onLine: (label, line) => say(`${prefix(label)} ${line}`),
    // A process that dies on its own is restarted, with back-off (runtime/cluster.ts RestartPolicy).
    restart: true,
    onEvent: (e) => {
      if (stopping) return;
      if (e.kind === 'exited')
        warn(
          `${prefix(e.label)} exited unexpectedly (${e.signal ?? `code ${e.code}`})${e.restartInMs === null ? '' : `; restarting in ${(e.restartInMs / 1000).toFixed(1)} s`}`,
        );
      else if (e.kind === 'restarted') warn(`${prefix(e.label)} restarted (pid ${e.pid}, restart ${e.restarts}), ready again`);
      else warn(`${prefix(e.label)} restart failed: ${e.error}`);
    },
  });
} catch (err) {
  fail(`start:cluster: ${messageOf(err)}`);
}
if (stopping) {
  await cluster.stop();
  process.exit(0);
}

say('\npaygraph cluster ready:');
for (const p of cluster.processes) say(`  ${p.label.padEnd(12)} ${p.url}  (pid ${p.child.pid})`);
say(`\nGateways (put a load balancer in front: docs/scale.md):\n${cluster.gateways.map((u) => `  ${u}`).join('\n')}\nStop with Ctrl-C.\n`);

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
