/**
 * The refusal guard's store shared by every gateway (fence/refusal-guard.ts RefusalStore): which
 * kinds of refused attempts each client address has used in each window, in Redis, so that g
 * gateways give an unauthenticated client the budget of refused attempts once, not g times, and
 * append one first record of a kind between them.
 *
 * One hash per address and window, `paygraph:ratelimit:gateway:<scope>:refusals:<address>:<window>`
 * (the gateway's ACL user may touch only `paygraph:ratelimit:gateway:*`: lib/redis.ts
 * redisAclRules), its fields the kinds (fixed-size digests), their values how many claims Redis
 * saw. The address is a SHA-256 digest (with the scope), so raw client addresses are not listed in
 * Redis keys; it is not anonymisation (the IPv4 space can be enumerated), only keeping them out
 * of key listings and monitoring. One Lua script claims atomically: HINCRBY the kind; a new kind
 * past perWindow is taken back (HDEL) and answered `over`; a new kind sets the hash's expiry to two
 * windows (it then outlives its window, which ends within one).
 *
 * When Redis is not ready or a claim fails (or takes over COMMAND_TIMEOUT_MS), that claim is
 * answered from this process's memory (MemoryRefusalStore), logged at warn once per outage: a
 * Redis outage makes each gateway bound on its own, and never refuses, stalls or fails an attempt.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../lib/log.js';
import { closeRedis, REDIS_PREFIX, whenRedisReady } from '../lib/redis.js';
import { MemoryRefusalStore, type RefusalClaim, type RefusalStore } from '../fence/refusal-guard.js';

/** How long one claim may wait for Redis before memory answers it. */
export const COMMAND_TIMEOUT_MS = 500;

/** The prefix of the refusal guard's keys of the gateways of `scope` (rate-limit.ts rateLimitKeyPrefix's sibling). */
export const refusalKeyPrefix = (scope: string): string => `${REDIS_PREFIX}:ratelimit:gateway:${scope}:refusals`;

/** The hash of `address`'s kinds in window `windowId`. */
export function refusalKey(scope: string, address: string, windowId: number): string {
  const digest = createHash('sha256').update(`${scope}\n${address}`).digest('hex').slice(0, 32);
  return `${refusalKeyPrefix(scope)}:${digest}:${windowId}`;
}

/**
 * KEYS[1] the hash, ARGV[1] the kind, ARGV[2] perWindow, ARGV[3] the expiry (ms). The commands it
 * calls (HINCRBY, HLEN, HDEL, PEXPIRE) are what the gateway's ACL user is allowed beyond EVAL.
 */
const CLAIM_SCRIPT = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n ~= 1 then return 'repeat' end
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 'over'
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'first'
`;

type ClaimingRedis = Redis & { refusalClaim(key: string, kind: string, perWindow: number, ttlMs: number): Promise<string> };

export interface RedisRefusalStore extends RefusalStore {
  /** Resolves once Redis is ready, or after `timeoutMs` (claims are answered from memory until then). */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function createRedisRefusalStore(opts: { redisUrl: string; scope: string; logger: Logger }): RedisRefusalStore {
  const redis = new Redis(opts.redisUrl, {
    connectionName: 'paygraph-gateway:refusals',
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
  }) as ClaimingRedis;
  // ioredis reconnects on its own; the claims' fallback is what is logged.
  redis.on('error', () => undefined);
  // ioredis's defineCommand: EVALSHA, EVAL when Redis does not have the script cached.
  redis.defineCommand('refusalClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
  const memory = new MemoryRefusalStore();
  let outage = false;
  redis.on('ready', () => {
    if (outage) opts.logger.info('[fence] Redis is back: refused attempts are bounded across gateways again');
    outage = false;
  });
  const fallBack = (err: unknown) => {
    if (!outage)
      opts.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        '[fence] Redis unavailable: refused attempts are bounded by this gateway alone until it is back',
      );
    outage = true;
  };
  return {
    async claim(address, kind, windowId, perWindow, windowMs): Promise<RefusalClaim> {
      if (redis.status !== 'ready') {
        fallBack(new Error(`Redis connection ${redis.status}`));
        return memory.claimNow(address, kind, windowId, perWindow);
      }
      try {
        const answer = await redis.refusalClaim(refusalKey(opts.scope, address, windowId), kind, perWindow, 2 * windowMs);
        if (answer === 'first' || answer === 'repeat' || answer === 'over') return answer;
        throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
      } catch (err) {
        fallBack(err);
        return memory.claimNow(address, kind, windowId, perWindow);
      }
    },
    ready: (timeoutMs) => whenRedisReady(redis, timeoutMs),
    close: () => closeRedis(redis),
  };
}
