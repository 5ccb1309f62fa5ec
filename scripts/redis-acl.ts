/**
 * npm run -s redis:acl -- [--apply <admin redis URL>] [--var-prefix PAYGRAPH_] [--user-prefix paygraph-]
 *
 * The per-service Redis ACL users (lib/redis.ts redisAclRules, docs/scale.md "Redis ACL users"),
 * each with a fresh random password:
 *
 * - without --apply: prints, for each service, the `redis-cli -u "$REDIS_ADMIN_URL" ACL SETUSER …`
 *   command (to review, then run as an administrator) and, as a comment, the URL variable that
 *   service gets (host and port to be filled in);
 * - with --apply <URL>: runs the commands on that Redis (as the user of the URL, who must be
 *   allowed ACL SETUSER) and prints `export <VAR>=<URL>` lines for a shell: one
 *   <var prefix><SERVICE>_REDIS_URL per service that uses Redis (the gateway and ads get a user
 *   with no rights at all, and no variable). CI evaluates them (.ci/run).
 *
 * Running it again resets the users (`reset` first) with new passwords.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { fail, messageOf, say } from '../lib/cli.js';
import { SERVICE_NAMES, usesRedis } from '../lib/config.js';
import { redisAclSetUser } from '../lib/redis.js';

const USAGE = 'usage: npm run -s redis:acl -- [--apply <admin redis URL>] [--var-prefix PAYGRAPH_] [--user-prefix paygraph-]';
const args = process.argv.slice(2);
const opts: Record<string, string> = {};
for (let i = 0; i < args.length; i += 2) {
  const [flag, value] = [args[i]!, args[i + 1]];
  if (!['--apply', '--var-prefix', '--user-prefix'].includes(flag) || value === undefined) fail(USAGE, 2);
  opts[flag.slice(2)] = value;
}
const varPrefix = opts['var-prefix'] ?? 'PAYGRAPH_';
const userPrefix = opts['user-prefix'] ?? 'paygraph-';
if (!/^[A-Z][A-Z0-9_]*_$/.test(varPrefix)) fail(`--var-prefix: capitals, digits and _, ending in _ (got ${varPrefix})`, 2);

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
let admin: URL | undefined;
if (opts.apply !== undefined) {
  try {
    admin = new URL(opts.apply);
  } catch {
    fail(`--apply: not a URL (${opts.apply})`, 2);
  }
  if (admin.protocol !== 'redis:' && admin.protocol !== 'rediss:') fail('--apply: a redis:// or rediss:// URL', 2);
}
const redis = admin ? new Redis(admin.toString(), { maxRetriesPerRequest: 1, connectionName: 'paygraph-redis-acl' }) : undefined;
try {
  for (const service of SERVICE_NAMES) {
    const user = `${userPrefix}${service}`;
    const password = randomBytes(24).toString('base64url');
    const command = redisAclSetUser(user, password, service);
    const url = admin ? new URL(admin) : new URL('redis://redis.internal:6379');
    url.username = user;
    url.password = password;
    url.pathname = '';
    const variable = `${varPrefix}${service.toUpperCase()}_REDIS_URL`;
    if (redis) {
      const [, ...rest] = command;
      await redis.call('ACL', ...rest);
      if (usesRedis(service)) say(`export ${variable}=${quote(url.toString())}`);
    } else {
      say(['redis-cli', '-u', '"$REDIS_ADMIN_URL"', ...command.map((a) => (/^[\w.:+-]+$/.test(a) ? a : quote(a)))].join(' '));
      say(usesRedis(service) ? `#   ${service}: ${variable}=${url.toString()}` : `#   ${service}: no Redis (no variable; the user can do nothing)`);
    }
  }
} catch (err) {
  fail(`redis:acl: ${messageOf(err)}`);
} finally {
  redis?.disconnect();
}
