/**
 * A paygraph cluster on one machine: every service in a process of its own (scripts/serve.ts),
 * several processes for the gateway and for the busy subgraphs, sharing one PostgreSQL and one
 * Redis. Used by `npm run start:cluster` (scripts/start-cluster.ts) and the scale tests
 * (test/scale/). On several machines, run scripts/serve.ts under any process manager with the same
 * environment (docs/scale.md).
 *
 * Port layout with a base port P (PORT, default 4000): process k (0, 1, ...) of a service gets
 * P + 10k + its offset (gateway 0, accounts 1, payments 2, merchants 3, alerts 4, ads 5), so the
 * first processes keep `npm start`'s ports. Base port 0: free ports picked by the OS.
 *
 * With `restart`, it supervises: a process that exits on its own is started again (same port and
 * environment) after a back-off that doubles with each quick death (RestartPolicy), and each exit
 * and return is reported (onEvent; `npm run start:cluster` logs them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { keyDirOf, loadConfig, redisUrlVariable, SERVICE_NAMES, SUBGRAPH_NAMES, usesRedis, type ServiceName, type SubgraphName } from '../lib/config.js';
import { derivedPublicKeyVariables, ensureDevKeys, givesPrivateKey, privateKeyVariable } from '../lib/transport/keys.js';
import { serviceDatabaseUrl } from './database.js';

export { isServiceName, SERVICE_NAMES, type ServiceName } from '../lib/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVE = path.join(ROOT, 'scripts', 'serve.ts');

/** The egress guard (lib/egress-guard.mjs) as a module URL, for `node --import` or NODE_OPTIONS. */
export const EGRESS_GUARD = pathToFileURL(path.join(ROOT, 'lib', 'egress-guard.mjs')).href;

/**
 * The node flags of a service process: `--import tsx`, preceded by the egress guard when its
 * environment has PAYGRAPH_EGRESS_GUARD=1 (tests: every connection outside loopback is refused and
 * reported on stderr, docs/operations.md#no-egress).
 */
export function serveNodeArgs(env: NodeJS.ProcessEnv): string[] {
  return [...(env.PAYGRAPH_EGRESS_GUARD === '1' ? ['--import', EGRESS_GUARD] : []), '--import', 'tsx'];
}

/** Processes per service by default: two gateways, two payments, two alerts, one of the others. */
export const DEFAULT_REPLICAS: Readonly<Record<ServiceName, number>> = { gateway: 2, accounts: 1, payments: 2, merchants: 1, alerts: 2, ads: 1 };
const OFFSET: Readonly<Record<ServiceName, number>> = { gateway: 0, accounts: 1, payments: 2, merchants: 3, alerts: 4, ads: 5 };

export interface ClusterOptions {
  /**
   * PostgreSQL database of every subgraph (each in its own schema), as DATABASE_URL: in
   * development also the admin that creates the roles. Only the migrate step gets it; each
   * subgraph process gets its own service role's URL, the gateways none. Required.
   */
  databaseUrl: string;
  /**
   * Redis URL for cross-process fan-out (REDIS_URL). Required. A service that uses Redis gets its
   * own PAYGRAPH_<NAME>_REDIS_URL from `env` instead when set (its ACL user, docs/scale.md); the
   * gateway and ads get none (serviceEnv).
   */
  redisUrl: string;
  /** Base port (see the layout above); 0 for free ports. Default 0. */
  basePort?: number;
  host?: string;
  /** Processes per service (default DEFAULT_REPLICAS). */
  replicas?: Partial<Record<ServiceName, number>>;
  /**
   * Environment of every process (default process.env); the cluster's own variables override it.
   * PAYGRAPH_EGRESS_GUARD=1 there preloads the egress guard into every process (serveNodeArgs).
   */
  env?: NodeJS.ProcessEnv;
  /**
   * The install's data directory (default PAYGRAPH_DATA_DIR, else ./data, from the repository):
   * every process is given it, and outside production the services' key pairs are created in its
   * `keys/` before any process starts (lib/transport/keys.ts).
   */
  dataDir?: string;
  /** Every output line of every process, with its label (e.g. `payments#2`). Default: none. */
  onLine?: (label: string, line: string, stream: 'stdout' | 'stderr') => void;
  /** How long every process has to answer /ready (default 90 s). */
  readyTimeoutMs?: number;
  /**
   * Restart a process that exits on its own (crash, OOM kill, `kill -9`), with exponential
   * back-off (RestartPolicy; `npm run start:cluster` turns it on). Default off: the caller decides.
   * A process stopped with stopProcess is not restarted.
   */
  restart?: Partial<RestartPolicy> | boolean;
  /** What the supervisor does: a process exited unexpectedly (and when it restarts), came back, or could not. */
  onEvent?: (event: ClusterEvent) => void;
}

/** How the supervisor restarts a process that died: after initialDelayMs, doubling up to maxDelayMs; a process up for resetAfterMs starts over. */
export interface RestartPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  resetAfterMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = { initialDelayMs: 500, maxDelayMs: 30_000, resetAfterMs: 60_000 };

export type ClusterEvent =
  | { kind: 'exited'; label: string; code: number | null; signal: NodeJS.Signals | null; restartInMs: number | null }
  | { kind: 'restarted'; label: string; pid: number; restarts: number }
  | { kind: 'restart-failed'; label: string; error: string };

/** The delay before restart number `attempt` (0-based) under `policy`. */
export function restartDelay(policy: RestartPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
}

export interface ClusterProcess {
  service: ServiceName;
  /** 1-based instance number within its service. */
  instance: number;
  /** `<service>#<instance>`. */
  label: string;
  port: number;
  /** http://host:port/graphql */
  url: string;
  /** The running child (replaced by restartProcess). */
  child: ChildProcess;
  /** Its output lines so far (the last MAX_LINES), across restarts. */
  lines: string[];
  /** How many times the supervisor restarted it (ClusterOptions.restart). */
  restarts: number;
}

export interface Cluster {
  /** The gateways' GraphQL URLs. */
  gateways: string[];
  processes: ClusterProcess[];
  /** Each subgraph's URLs, as the gateways are given them. */
  subgraphUrls: Record<SubgraphName, string[]>;
  /** Stops one process (SIGTERM, then SIGKILL after the grace period). */
  stopProcess(label: string): Promise<void>;
  /** Starts a stopped process again, same port and environment, and waits until it is ready. */
  startProcess(label: string): Promise<void>;
  /** Stops every process: gateways first, then the subgraphs. Idempotent. */
  stop(): Promise<void>;
}

const MAX_LINES = 20_000;
const STOP_GRACE_MS = 15_000;

/** `n` distinct free ports (held open together while choosing, so they differ). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i += 1) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/**
 * The environment of one process of `service`: the cluster's, less every other service's private
 * key variable (PAYGRAPH_<OTHER>_PRIVATE_KEY and its _FILE), so that each process is handed its
 * own private key only, whatever the supervisor holds; and less PAYGRAPH_JWT_PRIVATE_KEY_FILE (a
 * development issuer key for `npm run token`: no service mints tokens).
 */
export function processEnv(service: ServiceName, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  delete out.PAYGRAPH_JWT_PRIVATE_KEY_FILE;
  for (const other of SERVICE_NAMES.filter((s) => s !== service)) {
    delete out[privateKeyVariable(other)];
    delete out[`${privateKeyVariable(other)}_FILE`];
  }
  // Only the gateway verifies client tokens: no subgraph process is handed the token secret.
  if (service !== 'gateway') delete out.PAYGRAPH_JWT_SECRET;
  return out;
}

/** Environment variables that carry a database location or credentials (removed from every service process's environment). */
export function isDatabaseVariable(key: string): boolean {
  return key === 'DATABASE_URL' || /^PAYGRAPH_\w*DATABASE\w*$/.test(key) || ['PGPASSWORD', 'PGPASSFILE', 'PGUSER', 'PGSERVICEFILE'].includes(key);
}

/** Environment variables that carry a Redis location or credentials: REDIS_URL, PAYGRAPH_<ANY>_REDIS_URL (tests' too), redis-cli's REDISCLI_AUTH. */
export function isRedisVariable(key: string): boolean {
  return key === 'REDIS_URL' || key === 'REDISCLI_AUTH' || /^PAYGRAPH_\w*REDIS\w*$/.test(key);
}

/**
 * The environment of one service process: `env` without any database URL or credential (the
 * admin's, the owners', the other subgraphs'), plus, for a subgraph, its own service role's URL
 * as PAYGRAPH_<NAME>_DATABASE_URL. The gateway gets no database at all.
 *
 * Redis likewise: every Redis variable is removed, then a service that uses Redis
 * (lib/config.ts REDIS_SERVICES) gets back its own PAYGRAPH_<NAME>_REDIS_URL (its ACL user,
 * docs/scale.md) when `env` has one, else REDIS_URL. The gateway and ads get no Redis at all: a
 * hostile ads operator finds no Redis address or password in its environment.
 */
export function serviceEnv(service: ServiceName, env: NodeJS.ProcessEnv, databaseUrl: string | undefined): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!isDatabaseVariable(k) && !isRedisVariable(k)) out[k] = v;
  if (service !== 'gateway' && databaseUrl !== undefined) out[`PAYGRAPH_${service.toUpperCase()}_DATABASE_URL`] = databaseUrl;
  if (usesRedis(service)) {
    const own = env[redisUrlVariable(service)];
    if (own) out[redisUrlVariable(service)] = own;
    else if (env.REDIS_URL !== undefined) out.REDIS_URL = env.REDIS_URL;
  }
  return out;
}

/** `list` rotated so that element `k` comes first. */
function rotate<T>(list: readonly T[], k: number): T[] {
  const i = list.length ? k % list.length : 0;
  return [...list.slice(i), ...list.slice(0, i)];
}

/** Whether a child has exited (by code or signal). */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Stops a child: SIGTERM, then SIGKILL after the grace period. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  child.kill('SIGTERM');
  if (await waitExit(child, STOP_GRACE_MS)) return;
  child.kill('SIGKILL');
  await waitExit(child, 5_000);
}

/**
 * Runs `node --import tsx scripts/serve.ts <args>` (with the egress guard first when `env` asks,
 * see serveNodeArgs) with the label's output captured in `lines`. Stop it with stopChild.
 */
export function spawnServe(args: string[], label: string, env: NodeJS.ProcessEnv, onLine: ClusterOptions['onLine'], lines: string[]): ChildProcess {
  // One node process per service (no tsx CLI wrapper in between): signals reach it directly.
  const child = spawn(process.execPath, [...serveNodeArgs(env), SERVE, ...args], {
    cwd: ROOT,
    env: { ...env, PAYGRAPH_EXIT_WITH_STDIN: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    child[stream]!.setEncoding('utf8');
    child[stream]!.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
        onLine?.(label, line, stream);
      }
    });
  }
  // Its stdin is our pipe: if this process dies, the child sees end-of-file and stops itself.
  child.stdin!.on('error', () => undefined);
  return child;
}

/** Waits until a spawned service answers /ready at its URL (its /graphql URL's sibling); throws if it exits first or the deadline passes. */
export async function waitReady(proc: Pick<ClusterProcess, 'label' | 'url' | 'child' | 'lines'>, deadline: number): Promise<void> {
  const readyUrl = proc.url.replace(/\/graphql$/, '/ready');
  for (;;) {
    if (exited(proc.child))
      throw new Error(`${proc.label} exited (code ${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${proc.lines.slice(-20).join('\n')}`);
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${proc.label} was not ready at ${readyUrl} in time:\n${proc.lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  if (!opts.databaseUrl) throw new Error('a cluster needs PostgreSQL: set DATABASE_URL');
  if (!opts.redisUrl) throw new Error('a cluster needs Redis: set REDIS_URL');
  const host = opts.host ?? '127.0.0.1';
  const replicas = { ...DEFAULT_REPLICAS, ...opts.replicas };
  for (const name of SERVICE_NAMES) if (!Number.isInteger(replicas[name]) || replicas[name] < 1) throw new Error(`replicas of ${name} must be >= 1`);
  const total = SERVICE_NAMES.reduce((n, s) => n + replicas[s], 0);
  const base = opts.basePort ?? 0;
  const free = base > 0 ? [] : await freePorts(total, host);
  const ports = {} as Record<ServiceName, number[]>;
  for (const name of SERVICE_NAMES) ports[name] = Array.from({ length: replicas[name] }, (_, k) => (base > 0 ? base + 10 * k + OFFSET[name] : free.shift()!));
  const urlOf = (port: number) => `http://${host}:${port}/graphql`;
  const subgraphUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, ports[n].map(urlOf)])) as Record<SubgraphName, string[]>;

  const given = opts.env ?? process.env;
  const dataDir = path.resolve(ROOT, opts.dataDir ?? given.PAYGRAPH_DATA_DIR ?? 'data');
  const baseEnv: NodeJS.ProcessEnv = { ...given, DATABASE_URL: opts.databaseUrl, REDIS_URL: opts.redisUrl, HOST: host, PAYGRAPH_DATA_DIR: dataDir };
  // Keys (lib/transport/keys.ts). A private key given to the cluster in its environment goes to its
  // own service's processes only (processEnv), its public key to all (derived here). Outside
  // production every other service's key pair is in <data dir>/keys, created before any process
  // starts (so no two processes create one at once); in production each must be given.
  Object.assign(baseEnv, derivedPublicKeyVariables(baseEnv));
  if (baseEnv.NODE_ENV !== 'production')
    ensureDevKeys(
      keyDirOf(dataDir),
      SERVICE_NAMES.filter((s) => !givesPrivateKey(baseEnv, s)),
    );
  // The migrate step gets every database setting (DATABASE_URL, the admin and owner URLs, as given);
  // each service process only its own service role's URL (serviceEnv).
  const processes: ClusterProcess[] = [];
  const spawnArgs = new Map<string, { args: string[]; env: NodeJS.ProcessEnv }>();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Gateways first (no new work reaches the subgraphs), then the subgraphs.
    await Promise.all(processes.filter((p) => p.service === 'gateway').map((p) => stopChild(p.child)));
    await Promise.all(processes.filter((p) => p.service !== 'gateway').map((p) => stopChild(p.child)));
  };

  // 1. Migrate and seed once, before any service starts.
  const migrateLines: string[] = [];
  const migrator = spawnServe(['migrate'], 'migrate', baseEnv, opts.onLine, migrateLines);
  const code = await new Promise<number | null>((resolve) => migrator.once('exit', (c) => resolve(c)));
  // (Its output was already shown when onLine is set.)
  if (code !== 0) throw new Error(`migration failed (exit ${code})${opts.onLine ? '' : `:\n${migrateLines.slice(-30).join('\n')}`}`);
  // Each subgraph's service role URL, as the migrate step left them (development passwords in the data dir).
  const config = loadConfig(baseEnv);
  const serviceUrls = Object.fromEntries(SUBGRAPH_NAMES.map((n) => [n, serviceDatabaseUrl(n, config)])) as Record<SubgraphName, string | undefined>;

  // 2. Every process, each told where everything is. Process k of a service lists the k-th
  //    process of every multi-process subgraph first: its "home" peer for internal calls and, for
  //    a gateway, its alerts process for subscriptions (runtime/service.ts).
  try {
    for (const service of SERVICE_NAMES) {
      for (let k = 0; k < replicas[service]; k += 1) {
        const env = serviceEnv(service, processEnv(service, baseEnv), service === 'gateway' ? undefined : serviceUrls[service]);
        for (const n of SUBGRAPH_NAMES) env[`PAYGRAPH_${n.toUpperCase()}_URL`] = rotate(subgraphUrls[n], k).join(',');
        const label = `${service}#${k + 1}`;
        const lines: string[] = [];
        const port = ports[service][k]!;
        const args = [service, '--port', String(port), '--host', host];
        spawnArgs.set(label, { args, env });
        const child = spawnServe(args, label, env, opts.onLine, lines);
        processes.push({ service, instance: k + 1, label, port, url: urlOf(port), child, lines, restarts: 0 });
      }
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    await Promise.all(processes.map((p) => waitReady(p, deadline)));
  } catch (err) {
    await stop();
    throw err;
  }
  const find = (label: string) => {
    const p = processes.find((x) => x.label === label);
    if (!p) throw new Error(`no process ${label}`);
    return p;
  };

  // 3. The supervisor: a process that exits on its own comes back after a back-off.
  const policy = opts.restart ? { ...DEFAULT_RESTART, ...(opts.restart === true ? {} : opts.restart) } : null;
  /** Processes stopped on purpose (stopProcess), and the pending restart timers. */
  const held = new Set<string>();
  const timers = new Map<string, NodeJS.Timeout>();
  const attempts = new Map<string, number>();
  const respawn = (p: ClusterProcess) => {
    const { args, env } = spawnArgs.get(p.label)!;
    p.child = spawnServe(args, p.label, env, opts.onLine, p.lines);
    watch(p);
  };
  const watch = (p: ClusterProcess) => {
    const child = p.child;
    const startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (stopped || held.has(p.label) || p.child !== child) return;
      if (!policy) return opts.onEvent?.({ kind: 'exited', label: p.label, code, signal, restartInMs: null });
      const attempt = Date.now() - startedAt >= policy.resetAfterMs ? 0 : (attempts.get(p.label) ?? 0);
      attempts.set(p.label, attempt + 1);
      const delay = restartDelay(policy, attempt);
      opts.onEvent?.({ kind: 'exited', label: p.label, code, signal, restartInMs: delay });
      const timer = setTimeout(() => {
        timers.delete(p.label);
        if (stopped || held.has(p.label)) return;
        respawn(p);
        p.restarts += 1;
        waitReady(p, Date.now() + (opts.readyTimeoutMs ?? 90_000)).then(
          () => opts.onEvent?.({ kind: 'restarted', label: p.label, pid: p.child.pid!, restarts: p.restarts }),
          // An exit before ready is the watcher's (another back-off); anything else is reported.
          (err: unknown) => {
            if (!exited(p.child)) opts.onEvent?.({ kind: 'restart-failed', label: p.label, error: err instanceof Error ? err.message : String(err) });
          },
        );
      }, delay);
      timers.set(p.label, timer);
    });
  };
  for (const p of processes) watch(p);
  const supervisedStop = async () => {
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    await stop();
  };
  return {
    gateways: processes.filter((p) => p.service === 'gateway').map((p) => p.url),
    processes,
    subgraphUrls,
    async stopProcess(label: string) {
      const p = find(label);
      held.add(label);
      clearTimeout(timers.get(label));
      timers.delete(label);
      await stopChild(p.child);
    },
    async startProcess(label: string) {
      const p = find(label);
      if (stopped) throw new Error('the cluster is stopped');
      if (!exited(p.child)) throw new Error(`${label} is running`);
      held.delete(label);
      clearTimeout(timers.get(label));
      timers.delete(label);
      respawn(p);
      await waitReady(p, Date.now() + (opts.readyTimeoutMs ?? 90_000));
    },
    stop: supervisedStop,
  };
}
