/**
 * The refusal guard's bound shared by every gateway (fence/refusal-guard.ts, gateway/refusal-store.ts,
 * docs/audit.md "Robustness"):
 * - the stores: in memory, and in Redis (the Lua claim: first, repeat, over, the expiry), and a
 *   Redis that cannot be reached, where claims are answered from memory (logged once);
 * - two gateways on one stack and one Redis: an anonymous client's refused attempts through both
 *   get perWindow first records between them (not 2·perWindow), RATE_LIMITED at either past the
 *   shared budget, and once the window closed the sum of `count` is the number of attempts.
 * The Redis parts need Redis: PAYGRAPH_TEST_GATEWAY_REDIS_URL (the gateway's ACL user, so its rules
 * are proven), else REDIS_URL or PAYGRAPH_TEST_REDIS_URL (`npm run test:scale` sets them); skipped
 * without.
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { DataAccessRecord } from '../../fence/audit-record.js';
import { MemoryRefusalStore, RefusalGuard, refusalKind } from '../../fence/refusal-guard.js';
import { startGateway, type Gateway } from '../../gateway/index.js';
import { createRedisRefusalStore, refusalKey, type RedisRefusalStore } from '../../gateway/refusal-store.js';
import { secretVerifier } from '../../lib/auth.js';
import { close, listen } from '../../lib/http.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { generateKeyRing, serviceKeys } from '../../lib/transport/keys.js';
import { readSupergraph } from '../../schema/supergraph.js';
import { inOneWindow } from '../helpers/clock.js';
import { LogCapture } from '../helpers/logs.js';
import { postGraphQL, startTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/stack.js';
import { readUntil } from '../helpers/wait.js';

const redisUrl = process.env.PAYGRAPH_TEST_GATEWAY_REDIS_URL || process.env.REDIS_URL || process.env.PAYGRAPH_TEST_REDIS_URL || undefined;

const record = (operationHash: string, extra: Partial<DataAccessRecord> = {}): DataAccessRecord => ({
  at: new Date().toISOString(),
  userId: null,
  purpose: null,
  client: null,
  operationName: null,
  operationHash,
  coordinates: ['Account.mask'],
  decision: 'REFUSED',
  layer: 'gateway',
  requestId: null,
  reason: 'FORBIDDEN_DATA_USE',
  ...extra,
});
const scope = () => `test${Math.random().toString(36).slice(2, 10)}`;
const warnings = (logs: LogCapture) => logs.records().filter((r) => r.level === 40);

describe('the refusal stores without Redis', () => {
  it('memory: first once per address and window, then repeat; past perWindow over, and it stays over', async () => {
    const m = new MemoryRefusalStore();
    expect(await m.claim('a', 'k1', 7, 2)).toBe('first');
    expect(await m.claim('a', 'k1', 7, 2)).toBe('repeat');
    expect(await m.claim('a', 'k2', 7, 2)).toBe('first');
    expect(await m.claim('a', 'k3', 7, 2)).toBe('over');
    expect(await m.claim('a', 'k3', 7, 2)).toBe('over');
    expect(await m.claim('a', 'k1', 7, 2)).toBe('repeat');
    // Another address, another window: budgets of their own.
    expect(await m.claim('b', 'k3', 7, 2)).toBe('first');
    expect(await m.claim('a', 'k3', 8, 2)).toBe('first');
    // Windows before the previous one are forgotten (memory stays bounded).
    expect(await m.claim('a', 'k1', 10, 2)).toBe('first');
    expect(await m.claim('a', 'k1', 7, 2)).toBe('first');
  });

  it('the guard on fixed windows: recorded, coalesced, limited; the counts appended when the window closes', async () => {
    const appended: DataAccessRecord[] = [];
    const guard = new RefusalGuard(async (r) => void appended.push(r), silentLogger, { perWindow: 2, windowMs: 1_000 });
    const t = 5_000; // window 5
    expect(await guard.admit('a', record('h1'), t)).toBe('recorded');
    expect(await guard.admit('a', record('h1'), t + 500)).toBe('coalesced');
    expect(await guard.admit('a', record('h2'), t + 900)).toBe('recorded');
    expect(await guard.admit('a', record('h3'), t + 999)).toBe('limited');
    // The same document refused for another reason is another kind.
    expect(refusalKind(record('h1', { reason: 'RATE_LIMITED' }))).not.toBe(refusalKind(record('h1')));
    expect(appended.map((r) => [r.operationHash, r.count])).toEqual([
      ['h1', undefined],
      ['h2', undefined],
    ]);
    // Window 6 opened: window 5's counts are appended (the repeat of h1, the limited h3).
    expect(await guard.admit('a', record('h3'), t + 1_000)).toBe('recorded');
    await guard.flush(false, t + 1_001);
    expect(appended.filter((r) => r.count !== undefined).map((r) => [r.operationHash, r.reason, r.count])).toEqual(
      expect.arrayContaining([
        ['h1', 'FORBIDDEN_DATA_USE', 1],
        ['h3', 'RATE_LIMITED', 1],
      ]),
    );
    await guard.stop();
    expect(appended.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(5);
  });

  it('Redis unreachable: claims are answered from memory, logged once, and the guard admits as usual', async () => {
    // A port with nothing listening: bind one, then close it.
    const probe = http.createServer();
    const dead = new URL(await listen(probe, 0));
    await close(probe);
    const logs = new LogCapture();
    const store = createRedisRefusalStore({
      redisUrl: `redis://127.0.0.1:${dead.port}`,
      scope: scope(),
      logger: createLogger('gateway', { destination: logs, level: 'warn' }),
    });
    try {
      expect(await store.claim('a', 'k1', 1, 1, 1_000)).toBe('first');
      expect(await store.claim('a', 'k1', 1, 1, 1_000)).toBe('repeat');
      expect(await store.claim('a', 'k2', 1, 1, 1_000)).toBe('over');
      const appended: DataAccessRecord[] = [];
      const guard = new RefusalGuard(async (r) => void appended.push(r), silentLogger, { perWindow: 1, store });
      expect(await guard.admit('b', record('h1'))).toBe('recorded');
      expect(await guard.admit('b', record('h1'))).toBe('coalesced');
      expect(await guard.admit('b', record('h2'))).toBe('limited');
      await guard.stop();
      expect(appended.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(3);
      expect(warnings(logs)).toHaveLength(1);
      expect(warnings(logs)[0]!.msg).toMatch(/Redis unavailable/);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(!redisUrl)('the refusal guard shared through Redis (needs Redis; skipped without)', () => {
  const stores: RedisRefusalStore[] = [];
  const open = async (s: string, logger = silentLogger) => {
    const store = createRedisRefusalStore({ redisUrl: redisUrl!, scope: s, logger });
    stores.push(store);
    await store.ready();
    return store;
  };
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  it('the Lua claim: first once for every gateway, then repeat; a new kind past perWindow over (taken back); expiry two windows', async () => {
    const s = scope();
    const logs = new LogCapture();
    const logger = createLogger('gateway', { destination: logs, level: 'warn' });
    const [one, two] = [await open(s, logger), await open(s, logger)];
    expect(await one.claim('10.0.0.1', 'k1', 42, 2, 30_000)).toBe('first');
    // Another gateway on the same Redis: the kind was claimed.
    expect(await two.claim('10.0.0.1', 'k1', 42, 2, 30_000)).toBe('repeat');
    expect(await two.claim('10.0.0.1', 'k2', 42, 2, 30_000)).toBe('first');
    expect(await one.claim('10.0.0.1', 'k3', 42, 2, 30_000)).toBe('over');
    expect(await two.claim('10.0.0.1', 'k3', 42, 2, 30_000)).toBe('over');
    expect(await one.claim('10.0.0.1', 'k2', 42, 2, 30_000)).toBe('repeat');
    // Another address, another window, another scope: budgets of their own.
    expect(await one.claim('10.0.0.2', 'k3', 42, 2, 30_000)).toBe('first');
    expect(await one.claim('10.0.0.1', 'k3', 43, 2, 30_000)).toBe('first');
    expect(await (await open(scope())).claim('10.0.0.1', 'k3', 42, 2, 30_000)).toBe('first');
    // What Redis holds (read as the same user: its ACL allows HLEN and PTTL on its keys).
    const key = refusalKey(s, '10.0.0.1', 42);
    expect(key).toMatch(new RegExp(`^paygraph:ratelimit:gateway:${s}:refusals:[0-9a-f]{32}:42$`));
    expect(key).not.toContain('10.0.0.1');
    const redis = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.hlen(key)).toBe(2);
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(30_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      redis.disconnect();
    }
    // Every claim was Redis's: no fallback to memory (which would also have answered 'first' above).
    expect(warnings(logs)).toEqual([]);
  });

  describe('two gateways sharing one Redis and one audit', () => {
    let stack: TestStack | undefined;
    let second: Gateway | undefined;
    afterEach(async () => {
      vi.useRealTimers();
      await second?.stop();
      await stack?.stop();
      second = stack = undefined;
    });

    it('give an anonymous client perWindow first records between them, RATE_LIMITED at either past it, and every attempt counted', async () => {
      const perWindow = 3;
      const windowMs = 60_000;
      // A key ring of its own: its fingerprint scopes the Redis keys, so no other test's attempts count here.
      const keys = generateKeyRing();
      const logs = new LogCapture();
      const s = (stack = await startTestStack({
        keys,
        refusals: { perWindow, windowMs },
        gateway: { rateLimitRedisUrl: redisUrl },
        logDestination: logs,
        logLevel: 'warn',
      }));
      second = await startGateway({
        supergraphSdl: readSupergraph(),
        subgraphUrls: s.subgraphUrls,
        keys: serviceKeys(keys, 'gateway', []),
        tokenVerifier: secretVerifier(TEST_JWT_SECRET),
        production: false,
        rateLimitRedisUrl: redisUrl,
        refusals: { perWindow, windowMs },
        logger: createLogger('gateway', { destination: logs, level: 'warn' }),
      });
      const gateways = [s.url, second.url];
      const send = (i: number, query: string) => postGraphQL(gateways[i % 2]!, { query });
      const codeOf = (r: Awaited<ReturnType<typeof send>>) => r.errors?.[0]?.extensions?.code;
      const anonymous = async () =>
        (await s.dbs.accounts('data_access_log').whereNull('user_id').orderBy('leaf_index').select('leaf')).map(
          (r: { leaf: string }) => JSON.parse(r.leaf) as { operationName: string | null; reason: string | null; count: number },
        );

      const attempts = 20 + 6 + 1;
      let firstRecords: Awaited<ReturnType<typeof anonymous>> = [];
      const all = await inOneWindow(async () => {
        // 20 identical attempts, 10 through each gateway at once: one kind.
        const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i, '{ me { accounts { id mask } } }')));
        expect(flood.map(codeOf)).toEqual(Array(20).fill('GRAPHQL_VALIDATION_FAILED'));
        // Distinct attempts, alternating gateways: two more kinds fill the shared budget, then RATE_LIMITED at either.
        const probes = [];
        for (let i = 0; i < 6; i++) probes.push(await send(i, `query Probe${i} { me { accounts { id } } }`));
        expect(probes.map(codeOf)).toEqual([
          'GRAPHQL_VALIDATION_FAILED',
          'GRAPHQL_VALIDATION_FAILED',
          'RATE_LIMITED',
          'RATE_LIMITED',
          'RATE_LIMITED',
          'RATE_LIMITED',
        ]);
        expect(probes.slice(2).map((r) => r.status)).toEqual([429, 429, 429, 429]);
        // Probe1 went through the second gateway; through the first it is a repeat, not over the budget.
        expect(codeOf(await send(0, 'query Probe1 { me { accounts { id } } }'))).toBe('GRAPHQL_VALIDATION_FAILED');
        // Before the window closes, the log holds the first records only: perWindow of them, not 2·perWindow.
        firstRecords = await anonymous();
        // Close the window (the clock stays stopped, a window later): each gateway's timer appends the counts it saw.
        vi.setSystemTime(Date.now() + windowMs);
        return readUntil(anonymous, (rows) => rows.reduce((n, r) => n + r.count, 0) >= attempts, 'both gateways’ counts');
      });
      expect(firstRecords.map((r) => r.operationName ?? '').sort()).toEqual(['', 'Probe0', 'Probe1']);
      expect(all.reduce((n, r) => n + r.count, 0)).toBe(attempts);
      const summary = all.slice(firstRecords.length).map((r) => [r.operationName, r.reason, r.count]);
      // The flood's repeats and the limited attempts counted by each gateway (10 + 9 repeats; 2 + 2
      // limited), and the first gateway's repeat of Probe1.
      expect(summary).toHaveLength(5);
      expect(summary).toEqual(
        expect.arrayContaining([
          [null, 'GRAPHQL_VALIDATION_FAILED', 10],
          [null, 'GRAPHQL_VALIDATION_FAILED', 9],
          ['Probe1', 'GRAPHQL_VALIDATION_FAILED', 1],
          [null, 'RATE_LIMITED', 2],
          [null, 'RATE_LIMITED', 2],
        ]),
      );
      // Redis answered every claim (the gateways would warn on falling back to memory).
      expect(logs.records().filter((r) => /Redis unavailable/.test(String(r.msg)))).toEqual([]);
    });
  });
});
