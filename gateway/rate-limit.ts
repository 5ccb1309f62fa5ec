/**
 * The gateway's rate limits: per user, mutations (LimitsConfig.mutationsPerWindow per
 * mutationWindowMs); per client address, reads of the public audit log (audit-routes.ts). Shared
 * by every gateway: counted in Redis when the gateway has one (PAYGRAPH_GATEWAY_REDIS_URL, its
 * ACL user, or REDIS_URL), so N gateways allow the limit once, not N times, and a restart resets
 * nothing; in this process's memory otherwise (one gateway: `npm start`, tests).
 * rate-limiter-flexible does the counting (an atomic Lua INCR with its expiry in Redis, a fixed
 * window per key); if Redis is not ready, each gateway falls back to its own memory count (the
 * library's insurance limiter) rather than refusing or stalling every mutation.
 */
import type { GraphQLError } from 'graphql';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { appError } from '../lib/errors.js';
import { closeRedis, REDIS_PREFIX, whenRedisReady } from '../lib/redis.js';
import type { GatewayContext } from './context.js';

/**
 * The Redis keys of the shared counters, `paygraph:ratelimit:gateway:<scope>:<counter>:<key>`
 * (`mutations` per user, `audit-reads` per client address; the gateway's ACL user may touch only
 * these). The scope tells deployments sharing one Redis apart: the gateways of one deployment
 * share one key pair, so it is their public key's fingerprint.
 */
export const rateLimitKeyPrefix = (scope: string, counter = 'mutations'): string => `${REDIS_PREFIX}:ratelimit:gateway:${scope}:${counter}`;

/** A counter of points per key and fixed window, shared by every gateway through Redis when it has one. */
export interface RateLimiter {
  /** Whether counting is shared by every gateway (Redis). */
  readonly shared: boolean;
  /** Resolves once Redis is ready, or after `timeoutMs` (counting is in memory until then); at once without Redis. */
  ready(timeoutMs?: number): Promise<void>;
  /** Counts `points` (default 1) for `key`: null when allowed, else the seconds until the caller may retry. */
  take(key: string, points?: number): Promise<number | null>;
  close(): Promise<void>;
}

/** The per-user mutation counter (the limiter of `mutations`). */
export type MutationRateLimiter = RateLimiter;

export function createMutationRateLimiter(opts: { limit: number; windowMs: number; redisUrl?: string; scope: string }): MutationRateLimiter {
  return createRateLimiter({ ...opts, counter: 'mutations' });
}

export function createRateLimiter(opts: { limit: number; windowMs: number; redisUrl?: string; scope: string; counter: string }): RateLimiter {
  // rate-limiter-flexible counts whole seconds.
  const duration = Math.max(1, Math.round(opts.windowMs / 1000));
  const keyPrefix = rateLimitKeyPrefix(opts.scope, opts.counter);
  const memory = new RateLimiterMemory({ points: opts.limit, duration, keyPrefix });
  const redis = opts.redisUrl
    ? new Redis(opts.redisUrl, {
        connectionName: `paygraph-gateway:ratelimit:${opts.counter}`,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        lazyConnect: false,
      })
    : null;
  redis?.on('error', () => undefined); // reconnects on its own; the insurance limiter counts meanwhile
  const limiter = redis
    ? new RateLimiterRedis({
        storeClient: redis,
        points: opts.limit,
        duration,
        keyPrefix,
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      })
    : memory;
  return {
    shared: redis !== null,
    ready: (timeoutMs) => (redis ? whenRedisReady(redis, timeoutMs) : Promise.resolve()),
    async take(key, points = 1) {
      try {
        await limiter.consume(key, points);
        return null;
      } catch (res) {
        if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        throw res;
      }
    },
    close: () => (redis ? closeRedis(redis) : Promise.resolve()),
  };
}

/**
 * The mutation rate limit as a check: null when `operation` may run, else its RATE_LIMITED
 * refusal. The pipeline runs it as the fence's last check (gateway/pipeline.ts, Fence.enforce's
 * `later`), so that a mutation it refuses is audited as REFUSED with that reason, never as
 * ALLOWED, and an operation refused before it (an untrusted document, a fence refusal) spends
 * none of the caller's mutations.
 */
export function mutationRateLimit(limiter: MutationRateLimiter) {
  return async (operation: string | undefined, caller: GatewayContext['caller']): Promise<GraphQLError | null> => {
    if (operation !== 'mutation') return null;
    const key = caller.userId ?? `anonymous:${caller.client ?? ''}`;
    const retryAfter = await limiter.take(key);
    if (retryAfter === null) return null;
    return appError('RATE_LIMITED', `Too many mutations; retry in ${retryAfter} s.`, {
      retryAfterSeconds: retryAfter,
      http: { status: 429, headers: new Map([['retry-after', String(retryAfter)]]) },
    });
  };
}
