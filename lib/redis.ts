/**
 * Redis pub/sub for scale-out (REDIS_URL, ServiceEnv.redisUrl): the one place Redis clients are
 * built. A `PubSub` holds two connections (a subscriber connection cannot run other commands):
 * one publishes, one subscribes. ioredis reconnects on its own and re-subscribes after a
 * reconnection; `onReconnect` tells the owner, who must catch up from its database (messages
 * published while the connection was down are not replayed by Redis).
 *
 * Channel names are scoped to the database the service uses (`databaseScope`), so that unrelated
 * deployments (or parallel test stacks) sharing one Redis never hear each other: processes share
 * a channel if and only if they share the database.
 *
 * Least privilege (docs/scale.md "Redis ACL users"): every name starts with the service that owns
 * it, so one ACL user per service can be confined to its own by prefix:
 *
 * - channels `paygraph:<service>:<database scope>:<topic>` (alerts: `…:bus`, payments: `…:outbox`);
 * - replay-protection keys `paygraph:nonce:<service>:<nonce>`.
 *
 * `redisAclRules` gives each service's `ACL SETUSER` rules; each service connects with its own
 * URL (PAYGRAPH_<SERVICE>_REDIS_URL, else REDIS_URL: lib/config.ts). The gateway and ads use no
 * Redis at all (REDIS_SERVICES): ads is the advertising zone, and must not reach the alert bus.
 *
 * Connection trouble is logged through the caller's logger (its service's pino logger), so that a
 * Redis outage shows up in that service's log stream; a caller without one gets `redis`.
 */
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { usesRedis, type ServiceName } from './config.js';
import { createLogger, type Logger } from './log.js';

/** The first segment of every channel and key name (and of every ACL pattern). */
export const REDIS_PREFIX = 'paygraph';

export { REDIS_SERVICES, redisUrlVariable, usesRedis } from './config.js';

/** The pub/sub topics of each service (its channels: channelName). */
export const REDIS_TOPICS: Readonly<Partial<Record<ServiceName, readonly string[]>>> = { alerts: ['bus'], payments: ['outbox'] };

/**
 * The ACL rules of `service`'s Redis user, as `ACL SETUSER <user>` arguments after the user name
 * (and without the password: redisAclSetUser adds `on` and `>password`): `reset` first (no
 * command, key or channel), then only its own channels (`&<prefix>:<service>:*`) and nonce keys
 * (`~<prefix>:nonce:<service>:*`), and only the commands its clients send: the connection
 * handshake of ioredis (INFO for its ready check, CLIENT SETNAME; its CLIENT SETINFO may fail, ioredis ignores that), PING, QUIT, SET
 * (nonce claims) and, with topics, PUBLISH / SUBSCRIBE / UNSUBSCRIBE. The gateway's user may
 * touch its rate-limit counters and refusal-guard hashes only (`~<prefix>:ratelimit:gateway:*`). A service without Redis
 * (ads) gets `reset` alone: it can authenticate and do nothing.
 */
export function redisAclRules(service: ServiceName, prefix = REDIS_PREFIX): string[] {
  if (!usesRedis(service)) return ['reset'];
  // The gateways' shared mutation counters (gateway/rate-limit.ts, rate-limiter-flexible's Lua INCR
  // with expiry: EVALSHA, EVAL on a cold script cache) and refusal guard (gateway/refusal-store.ts,
  // a Lua HINCRBY / HLEN / HDEL / PEXPIRE: ACL checks each command a script calls), and nothing else.
  if (service === 'gateway')
    return [
      'reset',
      '+ping',
      '+quit',
      '+info',
      '+client|setname',
      `~${prefix}:ratelimit:gateway:*`,
      '+evalsha',
      '+eval',
      '+set',
      '+incrby',
      '+pttl',
      '+hincrby',
      '+hlen',
      '+hdel',
      '+pexpire',
    ];
  const rules = ['reset', '+ping', '+quit', '+info', '+client|setname', `~${prefix}:nonce:${service}:*`, '+set'];
  if (REDIS_TOPICS[service]?.length) rules.push(`&${prefix}:${service}:*`, '+publish', '+subscribe', '+unsubscribe');
  return rules;
}

/** The whole `ACL SETUSER` command creating (or resetting) `user` with `password` and `service`'s rules. */
export function redisAclSetUser(user: string, password: string, service: ServiceName, prefix = REDIS_PREFIX): string[] {
  if (!/^[\w.-]+$/.test(user)) throw new Error(`Redis user name ${JSON.stringify(user)}: letters, digits, '.', '_' and '-' only`);
  if (!/^[\w.~-]{16,}$/.test(password)) throw new Error('a Redis password: at least 16 characters, letters, digits and . _ ~ - only (it goes into a URL)');
  const [reset, ...rest] = redisAclRules(service, prefix);
  return ['ACL', 'SETUSER', user, reset!, 'on', `>${password}`, ...rest];
}

/** How long `close()` waits for a graceful QUIT before dropping the connections. */
export const REDIS_CLOSE_TIMEOUT_MS = 1_000;

/** The least of ioredis a client helper below needs (status and the `ready` event; QUIT, disconnect). */
type RedisClient = Pick<Redis, 'status' | 'once' | 'off' | 'quit' | 'disconnect'>;

/** Resolves once `redis` is ready, or after `timeoutMs` (its user counts in memory until then). */
export function whenRedisReady(redis: RedisClient, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.once('ready', done);
  });
}

/** QUIT, bounded by REDIS_CLOSE_TIMEOUT_MS, then drop the connection whatever Redis answered. */
export async function closeRedis(redis: RedisClient): Promise<void> {
  await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, REDIS_CLOSE_TIMEOUT_MS).unref())]);
  redis.disconnect();
}

export interface PubSub {
  /** Publishes `message` on `channel`; rejects when Redis is unreachable (bounded by ioredis retries). */
  publish(channel: string, message: string): Promise<void>;
  /** Subscribes `fn` to `channel` (resolves once Redis confirmed); returns the unsubscriber. */
  subscribe(channel: string, fn: (message: string) => void): Promise<() => Promise<void>>;
  /** Called after the subscriber connection came back from an outage (and re-subscribed). */
  onReconnect(fn: () => void): void;
  /** Closes both connections (idempotent). */
  close(): Promise<void>;
}

export interface RedisOptions {
  /** Where connection errors go; default: a logger named `redis` (lib/log.ts). */
  logger?: Logger;
}

function client(url: string, name: string, log: Logger): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    // A publish while Redis is down fails after a few attempts instead of queueing forever.
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(2_000, 50 * 2 ** Math.min(times, 6)),
  });
  let logged = 0;
  redis.on('error', (err: Error) => {
    // ioredis retries by itself (an outage repeats its error per retry): log the first failure of
    // an outage and then every 50th.
    if (logged++ % 50 === 0) log.warn({ connection: name, err: err.message }, 'redis connection error');
  });
  redis.on('ready', () => {
    logged = 0;
  });
  return redis;
}

export function connectPubSub(url: string, name: string, opts: RedisOptions = {}): PubSub {
  const log = opts.logger ?? createLogger('redis');
  const pub = client(url, `${name}:pub`, log);
  const sub = client(url, `${name}:sub`, log);
  const handlers = new Map<string, Set<(message: string) => void>>();
  const reconnectListeners: (() => void)[] = [];
  let readyOnce = false;
  let closed = false;
  sub.on('message', (channel: string, message: string) => {
    for (const fn of handlers.get(channel) ?? []) {
      try {
        fn(message);
      } catch (err) {
        log.error({ connection: name, channel, err }, 'redis message handler failed');
      }
    }
  });
  sub.on('ready', () => {
    if (!readyOnce) {
      readyOnce = true;
      return;
    }
    // ioredis re-subscribes (autoResubscribe) right after emitting 'ready'; a PING sent after that
    // is answered after the SUBSCRIBE, so from then on nothing is missed. What was published while
    // the connection was down is lost: the listeners catch up from their database.
    setImmediate(() => {
      sub
        .ping()
        .catch(() => undefined)
        .then(() => {
          for (const fn of reconnectListeners) fn();
        });
    });
  });
  return {
    async publish(channel, message) {
      await pub.publish(channel, message);
    },
    async subscribe(channel, fn) {
      let set = handlers.get(channel);
      if (!set) {
        handlers.set(channel, (set = new Set()));
        await sub.subscribe(channel);
      }
      set.add(fn);
      return async () => {
        set.delete(fn);
        if (set.size === 0 && handlers.get(channel) === set) {
          handlers.delete(channel);
          if (!closed) await sub.unsubscribe(channel).catch(() => undefined);
        }
      };
    },
    onReconnect(fn) {
      reconnectListeners.push(fn);
    },
    async close() {
      if (closed) return;
      closed = true;
      handlers.clear();
      await Promise.all(
        [pub, sub].map(async (r) => {
          const timer = setTimeout(() => r.disconnect(), REDIS_CLOSE_TIMEOUT_MS);
          try {
            await r.quit();
          } catch {
            r.disconnect();
          } finally {
            clearTimeout(timer);
          }
        }),
      );
    },
  };
}

/**
 * A short, stable name for "the database behind `db`": processes that share the database get the
 * same scope. PostgreSQL: database name and oid, and the schema (search path); a SQLite file: host
 * and absolute path; an in-memory SQLite database cannot be shared, so it gets a random scope.
 */
export async function databaseScope(db: Knex): Promise<string> {
  let identity: string;
  if (db.client.config.client === 'pg') {
    const res = (await db.raw(
      'select current_database() as name, (select oid from pg_database where datname = current_database()) as oid, current_schema() as schema',
    )) as { rows: { name: string; oid: unknown; schema: string }[] };
    const row = res.rows[0]!;
    identity = `pg:${row.name}:${String(row.oid)}:${row.schema}`;
  } else {
    const filename = (db.client.config.connection as { filename?: string } | undefined)?.filename ?? ':memory:';
    identity = filename === ':memory:' ? `memory:${randomUUID()}` : `sqlite:${os.hostname()}:${path.resolve(filename)}`;
  }
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/** `service`'s channel for `topic` among its processes sharing the database of scope `scope`. */
export function channelName(service: ServiceName, scope: string, topic: string): string {
  return `${REDIS_PREFIX}:${service}:${scope}:${topic}`;
}

/** The key claiming `nonce` for the processes of `scope` (a service name: redisAclRules confines each to its own). */
export function nonceKey(scope: string, nonce: string): string {
  return `${REDIS_PREFIX}:nonce:${scope}:${nonce}`;
}

/**
 * Replay protection shared by every process of a service (lib/transport/signing.ts SignatureVerifier): a
 * nonce is claimed with `SET key 1 PX ttl NX`, so a signed request captured on its way to one
 * process cannot be replayed to another within the freshness window.
 */
export interface NonceStore {
  /** True when this is the first claim of `nonce` in `scope` within `ttlMs`. Rejects when Redis is unreachable. */
  claim(scope: string, nonce: string, ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export function connectNonceStore(url: string, name: string, opts: RedisOptions = {}): NonceStore {
  const redis = client(url, `${name}:nonces`, opts.logger ?? createLogger('redis'));
  return {
    async claim(scope, nonce, ttlMs) {
      return (await redis.set(nonceKey(scope, nonce), '1', 'PX', ttlMs, 'NX')) === 'OK';
    },
    close: () => closeRedis(redis),
  };
}
