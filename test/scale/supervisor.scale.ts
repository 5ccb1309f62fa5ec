/**
 * The cluster's supervisor and what every gateway shares, on a real cluster (PostgreSQL + Redis):
 * - a process killed with SIGKILL comes back (same port, a new pid) after a back-off that doubles
 *   when it dies again quickly, and each exit and return is reported (runtime/cluster.ts);
 *   a process stopped on purpose (stopProcess) stays down;
 * - two gateways share one mutation rate limit through Redis (gateway/rate-limit.ts): a user gets
 *   the limit once across both, and a gateway's restart resets nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { SERVICE_NAMES } from '../../lib/config.js';
import { privateKeyPem, privateKeyVariable } from '../../lib/transport/keys.js';
import { startCluster, type Cluster, type ClusterEvent } from '../../runtime/cluster.js';
import { op } from '../helpers/contract.js';
import { expectGraphQLError } from '../helpers/matchers.js';
import { freshPostgresDatabase, postGraphQL, TEST_JWT_SECRET, TEST_KEYS, userId } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const LIMIT = 5;
let cluster: Cluster;
let database: { url: string; drop(): Promise<void> };
let dataDir: string;
const events: ClusterEvent[] = [];

beforeAll(async () => {
  database = await freshPostgresDatabase(process.env.PAYGRAPH_TEST_DATABASE_URL!);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-supervisor-'));
  cluster = await startCluster({
    databaseUrl: database.url,
    redisUrl: process.env.REDIS_URL!,
    basePort: 0,
    replicas: { gateway: 2, payments: 1, alerts: 1 },
    restart: { initialDelayMs: 300, maxDelayMs: 5_000, resetAfterMs: 60_000 },
    onEvent: (e) => events.push(e),
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PAYGRAPH_DATA_DIR: dataDir,
      PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET,
      PAYGRAPH_MUTATIONS_PER_MINUTE: String(LIMIT),
      ...Object.fromEntries(SERVICE_NAMES.map((s) => [privateKeyVariable(s), privateKeyPem(TEST_KEYS[s])])),
    },
  });
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
  await database?.drop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const gateway = (n: number) => cluster.processes.find((p) => p.label === `gateway#${n}`)!;
const ready = async (url: string) => (await fetch(url.replace(/\/graphql$/, '/ready')).catch(() => null))?.status === 200;

describe('the supervisor', () => {
  it('restarts a child killed with SIGKILL, with a back-off that grows, and reports it', async () => {
    const p = cluster.processes.find((x) => x.label === 'merchants#1')!;
    for (const round of [1, 2]) {
      const before = p.child.pid!;
      process.kill(before, 'SIGKILL');
      await waitFor(() => events.some((e) => e.kind === 'restarted' && e.label === p.label && e.restarts === round), `restart ${round}`, 60_000);
      expect(p.child.pid).not.toBe(before);
      expect(await ready(p.url)).toBe(true);
    }
    const exits = events.filter((e): e is Extract<ClusterEvent, { kind: 'exited' }> => e.kind === 'exited' && e.label === p.label);
    expect(exits.map((e) => e.signal)).toEqual(['SIGKILL', 'SIGKILL']);
    // Died again within resetAfterMs: the second wait is twice the first.
    expect(exits.map((e) => e.restartInMs)).toEqual([300, 600]);
    expect(p.restarts).toBe(2);
  }, 120_000);

  it('leaves a process stopped on purpose down until it is started', async () => {
    const p = cluster.processes.find((x) => x.label === 'ads#1')!;
    await cluster.stopProcess(p.label);
    const count = events.length;
    // Long enough for a restart to have begun, were one scheduled (the back-off is 300 ms).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(events.slice(count)).toEqual([]);
    expect(await ready(p.url)).toBe(false);
    await cluster.startProcess(p.label);
    expect(await ready(p.url)).toBe(true);
  }, 60_000);
});

describe('the mutation rate limit, shared by both gateways through Redis', () => {
  const send = async (url: string, token: string, key: string) =>
    postGraphQL(
      url,
      {
        query: op('SendMoney'),
        // A recipient that does not exist: a mutation that moves nothing, and counts all the same.
        variables: { input: { fromAccountId: 'acc_dave_checking', toHandle: 'nobody', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: key } },
      },
      { authorization: `Bearer ${token}` },
    );

  it('allows a user the limit once across both gateways, and a restarted gateway remembers', async () => {
    const token = await signToken(TEST_JWT_SECRET, userId('dave'), 'payments');
    const [a, b] = [gateway(1).url, gateway(2).url];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await send(i % 2 ? b : a, token, `rl-${i}`)).status);
    expect(statuses).toEqual(Array(LIMIT).fill(200));
    // Either gateway: the user's limit is spent (each alone would have allowed LIMIT).
    expectGraphQLError(await send(a, token, 'rl-a'), 'RATE_LIMITED', { status: 429 });
    expectGraphQLError(await send(b, token, 'rl-b'), 'RATE_LIMITED', { status: 429 });
    // A gateway that crashes and comes back counts on from Redis.
    const g = gateway(2);
    const restarts = g.restarts;
    process.kill(g.child.pid!, 'SIGKILL');
    await waitFor(async () => g.restarts > restarts && (await ready(g.url)), 'gateway#2 back', 60_000);
    expectGraphQLError(await send(g.url, token, 'rl-c'), 'RATE_LIMITED', { status: 429 });
  }, 120_000);
});
