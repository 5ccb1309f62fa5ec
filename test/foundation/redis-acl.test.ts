/**
 * Redis least privilege (docs/scale.md "Redis ACL users"): the channel and key names, the ACL
 * rules of each service (lib/redis.ts redisAclRules), who is handed which Redis URL
 * (lib/config.ts serviceRedisUrls, runtime/cluster.ts serviceEnv: ads and the gateway none), and,
 * on a real Redis, that the rules hold: each service's user can do its own work and nothing of
 * another's, and a user with no rules (ads) can do nothing at all.
 *
 * The Redis part needs REDIS_URL or PAYGRAPH_TEST_REDIS_URL with a user allowed to run ACL (CI's
 * default user); it creates users with random names and passwords and deletes them afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, SERVICE_NAMES, type ServiceName } from '../../lib/config.js';
import { silentLogger } from '../../lib/log.js';
import {
  channelName,
  connectNonceStore,
  connectPubSub,
  nonceKey,
  REDIS_SERVICES,
  redisAclRules,
  redisAclSetUser,
  redisUrlVariable,
  usesRedis,
} from '../../lib/redis.js';
import { isRedisVariable, serviceEnv } from '../../runtime/cluster.js';
import { createMutationRateLimiter, rateLimitKeyPrefix } from '../../gateway/rate-limit.js';
import { waitFor } from '../helpers/wait.js';

const redisUrl = process.env.REDIS_URL || process.env.PAYGRAPH_TEST_REDIS_URL || undefined;

describe('Redis names and ACL rules', () => {
  it('every name starts with the service that owns it', () => {
    expect(channelName('alerts', 'abc', 'bus')).toBe('paygraph:alerts:abc:bus');
    expect(channelName('payments', 'abc', 'outbox')).toBe('paygraph:payments:abc:outbox');
    expect(nonceKey('alerts', 'n1')).toBe('paygraph:nonce:alerts:n1');
  });

  it('gives each service its own channels and keys only, ads and the gateway nothing', () => {
    const base = ['reset', '+ping', '+quit', '+info', '+client|setname'];
    expect(redisAclRules('alerts')).toEqual([...base, '~paygraph:nonce:alerts:*', '+set', '&paygraph:alerts:*', '+publish', '+subscribe', '+unsubscribe']);
    expect(redisAclRules('payments')).toEqual([
      ...base,
      '~paygraph:nonce:payments:*',
      '+set',
      '&paygraph:payments:*',
      '+publish',
      '+subscribe',
      '+unsubscribe',
    ]);
    expect(redisAclRules('accounts')).toEqual([...base, '~paygraph:nonce:accounts:*', '+set']);
    expect(redisAclRules('merchants')).toEqual([...base, '~paygraph:nonce:merchants:*', '+set']);
    expect(redisAclRules('ads')).toEqual(['reset']);
    expect(redisAclRules('gateway')).toEqual([
      ...base,
      '~paygraph:ratelimit:gateway:*',
      '+evalsha',
      '+eval',
      '+set',
      '+incrby',
      '+pttl',
      '+hincrby',
      '+hlen',
      '+hdel',
      '+pexpire',
    ]);
    expect(redisAclRules('alerts', 'other')).toContain('&other:alerts:*');
    expect(redisAclSetUser('u', 'p'.repeat(16), 'ads')).toEqual(['ACL', 'SETUSER', 'u', 'reset', 'on', `>${'p'.repeat(16)}`]);
    expect(() => redisAclSetUser('u v', 'p'.repeat(16), 'ads')).toThrow(/user name/);
    expect(() => redisAclSetUser('u', 'short', 'ads')).toThrow(/password/);
    expect(REDIS_SERVICES).toEqual(['gateway', 'accounts', 'payments', 'merchants', 'alerts']);
  });

  it('each service connects with its own URL, else REDIS_URL; ads with none', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://shared:6379',
      PAYGRAPH_ALERTS_REDIS_URL: 'redis://alerts:pw@r:6379',
      PAYGRAPH_ADS_REDIS_URL: 'redis://ads:pw@r:6379',
    });
    expect(config.serviceRedisUrls).toEqual({
      gateway: 'redis://shared:6379',
      accounts: 'redis://shared:6379',
      payments: 'redis://shared:6379',
      merchants: 'redis://shared:6379',
      alerts: 'redis://alerts:pw@r:6379',
      ads: undefined,
    });
    expect(() => loadConfig({ PAYGRAPH_PAYMENTS_REDIS_URL: 'http://r' })).toThrow(/PAYGRAPH_PAYMENTS_REDIS_URL must be a redis:\/\//);
  });

  it('a cluster process gets its own Redis URL only; ads no Redis variable at all', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', REDIS_URL: 'redis://shared', REDISCLI_AUTH: 'pw', PAYGRAPH_TEST_REDIS_URL: 'redis://t' };
    for (const s of SERVICE_NAMES) env[redisUrlVariable(s)] = `redis://${s}:pw@r`;
    for (const s of SERVICE_NAMES) {
      const out = serviceEnv(s, env, undefined);
      const redisVars = Object.keys(out).filter(isRedisVariable);
      expect(redisVars).toEqual(usesRedis(s) ? [redisUrlVariable(s)] : []);
      if (!usesRedis(s)) expect(JSON.stringify(out)).not.toMatch(/redis:/);
      if (usesRedis(s)) expect(out[redisUrlVariable(s)]).toBe(`redis://${s}:pw@r`);
    }
    // Without its own URL, a Redis service gets REDIS_URL; ads still nothing.
    const shared = { PATH: '/usr/bin', REDIS_URL: 'redis://shared' };
    expect(serviceEnv('payments', shared, undefined)).toEqual(shared);
    expect(serviceEnv('ads', shared, undefined)).toEqual({ PATH: '/usr/bin' });
  });
});

describe.skipIf(!redisUrl)('Redis ACL users on a real Redis (needs REDIS_URL or PAYGRAPH_TEST_REDIS_URL; skipped without)', () => {
  let admin: Redis;
  const tag = randomBytes(4).toString('hex');
  const users = new Map<ServiceName, string>();
  const opened: { close(): Promise<void> }[] = [];
  const raw: Redis[] = [];
  const scope = `acltest${tag}`;

  const urlOf = (service: ServiceName) => users.get(service)!;
  /** A plain client as `service`'s user (no ready check: a user without INFO would warn on the console). */
  const rawClient = (service: ServiceName) => {
    const r = new Redis(urlOf(service), { enableReadyCheck: false, maxRetriesPerRequest: 1, lazyConnect: true });
    r.on('error', () => undefined);
    raw.push(r);
    return r;
  };

  beforeAll(async () => {
    admin = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    for (const service of SERVICE_NAMES) {
      const user = `paygraph-test-${tag}-${service}`;
      const password = randomBytes(18).toString('base64url');
      const [, ...args] = redisAclSetUser(user, password, service);
      await admin.call('ACL', ...args);
      const url = new URL(redisUrl!);
      url.username = user;
      url.password = password;
      users.set(service, url.toString());
    }
  });
  afterAll(async () => {
    for (const c of opened) await c.close();
    for (const r of raw) r.disconnect();
    if (admin) {
      await admin.call('ACL', 'DELUSER', ...[...SERVICE_NAMES].map((s) => `paygraph-test-${tag}-${s}`)).catch(() => undefined);
      admin.disconnect();
    }
  });

  it('the alerts user publishes and subscribes on its channels and claims its nonces', async () => {
    const a = connectPubSub(urlOf('alerts'), 'acl-alerts-a', { logger: silentLogger });
    const b = connectPubSub(urlOf('alerts'), 'acl-alerts-b', { logger: silentLogger });
    opened.push(a, b);
    const got: string[] = [];
    const channel = channelName('alerts', scope, 'bus');
    await b.subscribe(channel, (m) => got.push(m));
    await a.publish(channel, 'hello');
    await waitFor(() => got.length === 1, 'the message to arrive');
    expect(got).toEqual(['hello']);
    const nonces = connectNonceStore(urlOf('alerts'), 'acl-alerts', { logger: silentLogger });
    opened.push(nonces);
    expect(await nonces.claim('alerts', `n${tag}`, 5_000)).toBe(true);
    expect(await nonces.claim('alerts', `n${tag}`, 5_000)).toBe(false);
    // Not another service's nonces, and no reading.
    await expect(nonces.claim('payments', `n${tag}`, 5_000)).rejects.toThrow(/NOPERM/);
    const r = rawClient('alerts');
    await expect(r.get(nonceKey('alerts', `n${tag}`))).rejects.toThrow(/NOPERM/);
    await expect(r.publish(channelName('payments', scope, 'outbox'), 'x')).rejects.toThrow(/NOPERM/);
  });

  it('the payments user has its feed channel and nonces, but cannot subscribe to the alert bus', async () => {
    const p = connectPubSub(urlOf('payments'), 'acl-payments', { logger: silentLogger });
    opened.push(p);
    const got: string[] = [];
    const own = channelName('payments', scope, 'outbox');
    await p.subscribe(own, (m) => got.push(m));
    await p.publish(own, 'wake');
    await waitFor(() => got.length === 1, 'the wake-up to arrive');
    await expect(p.subscribe(channelName('alerts', scope, 'bus'), () => undefined)).rejects.toThrow(/NOPERM/);
    const r = rawClient('payments');
    await expect(r.subscribe(channelName('alerts', scope, 'bus'))).rejects.toThrow(/NOPERM/);
    await expect(r.psubscribe('paygraph:*')).rejects.toThrow(/NOPERM/);
    const q = rawClient('payments');
    await expect(q.publish(channelName('alerts', scope, 'bus'), '{}')).rejects.toThrow(/NOPERM/);
    const nonces = connectNonceStore(urlOf('payments'), 'acl-payments', { logger: silentLogger });
    opened.push(nonces);
    expect(await nonces.claim('payments', `n${tag}`, 5_000)).toBe(true);
    await expect(nonces.claim('alerts', `m${tag}`, 5_000)).rejects.toThrow(/NOPERM/);
  });

  it('the gateway user counts on its rate-limit keys and touches nothing else', async () => {
    const limiter = createMutationRateLimiter({ limit: 2, windowMs: 60_000, redisUrl: urlOf('gateway'), scope });
    opened.push(limiter);
    await limiter.ready();
    expect(await limiter.take(`u${tag}`)).toBeNull();
    expect(await limiter.take(`u${tag}`)).toBeNull();
    expect(await limiter.take(`u${tag}`)).toBeGreaterThan(0);
    expect(Number(await admin.get(`${rateLimitKeyPrefix(scope)}:u${tag}`))).toBe(3);
    const r = rawClient('gateway');
    await expect(r.get(nonceKey('alerts', `n${tag}`))).rejects.toThrow(/NOPERM/);
    await expect(r.set('anything', '1')).rejects.toThrow(/NOPERM/);
    await expect(r.subscribe(channelName('alerts', scope, 'bus'))).rejects.toThrow(/NOPERM/);
    await expect(r.call('KEYS', '*')).rejects.toThrow(/NOPERM/);
  });

  it('a user with no rules (ads) can SUBSCRIBE, PSUBSCRIBE and GET nothing', async () => {
    for (const service of ['ads'] as const) {
      const sub = rawClient(service);
      await expect(sub.subscribe(channelName('alerts', scope, 'bus'))).rejects.toThrow(/NOPERM/);
      const psub = rawClient(service);
      await expect(psub.psubscribe('*')).rejects.toThrow(/NOPERM/);
      const r = rawClient(service);
      await expect(r.get(nonceKey('alerts', `n${tag}`))).rejects.toThrow(/NOPERM/);
      await expect(r.get('anything')).rejects.toThrow(/NOPERM/);
      await expect(r.publish(channelName('alerts', scope, 'bus'), '{}')).rejects.toThrow(/NOPERM/);
      await expect(r.call('KEYS', '*')).rejects.toThrow(/NOPERM/);
    }
  });

  it('a wrong password is refused', async () => {
    const user = decodeURIComponent(new URL(urlOf('alerts')).username);
    const r = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    r.on('error', () => undefined);
    raw.push(r);
    await expect(r.call('AUTH', user, 'wrong-password-wrong')).rejects.toThrow(/WRONGPASS/);
  });
});
