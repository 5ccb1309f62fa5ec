/**
 * Zone isolation: a stack started with ads isolated (StackOptions.isolate, what `npm start` does)
 * runs the ads subgraph in a child process of its own (scripts/serve.ts), real processes on free
 * ports and a temporary data directory. Its listener belongs to that process, its environment
 * holds its own private key and no other service's secret, whatever the supervisor holds, the
 * gateway reaches it, and stopping it (or the stack) leaves no process behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../lib/auth.js';
import { SERVICE_NAMES } from '../../lib/config.js';
import { privateKeyPem, privateKeyVariable, publicKeyPem } from '../../lib/transport/keys.js';
import { startStack, type Stack } from '../../runtime/stack.js';
import { postGraphQL, TEST_JWT_SECRET, TEST_KEYS, userId } from '../helpers/stack.js';
import { createPublicKey } from 'node:crypto';

const linux = process.platform === 'linux';
const QUERY = '{ me { id sponsoredOffers { id } } }';

/** What the supervisor holds in its own environment (as `npm start` may): none of it may reach ads. */
const SUPERVISOR_SECRETS: Record<string, string> = {
  PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET,
  [privateKeyVariable('payments')]: privateKeyPem(TEST_KEYS.payments),
  [privateKeyVariable('gateway')]: privateKeyPem(TEST_KEYS.gateway),
  DATABASE_URL: 'postgres://admin:admin-password@127.0.0.1:1/paygraph',
  PAYGRAPH_PAYMENTS_DATABASE_URL: 'postgres://payments:payments-password@127.0.0.1:1/paygraph',
};
const saved: Record<string, string | undefined> = {};

let dataDir: string;
let stack: Stack<'ads'>;
const childLines: string[] = [];

beforeAll(async () => {
  for (const [k, v] of Object.entries(SUPERVISOR_SECRETS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-adsproc-'));
  stack = await startStack({
    dataDir,
    port: 0,
    host: '127.0.0.1',
    jwtSecret: TEST_JWT_SECRET,
    keys: TEST_KEYS,
    isolate: ['ads'],
    onChildLine: (_, line) => childLines.push(line),
  });
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const advertising = () => signToken(TEST_JWT_SECRET, userId('alice'), 'advertising');
const gql = async (query: string) =>
  postGraphQL<{ me: { id: string; sponsoredOffers: { id: string }[] | null } }>(stack.url, { query }, { authorization: `Bearer ${await advertising()}` });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ESRCH') return false;
    throw err;
  }
}

/** The inode of the socket listening on 127.0.0.1:<port> (/proc/net/tcp). */
function listeningInode(port: number): string | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') return f[9];
  }
  return undefined;
}

/** Whether process `pid` holds socket `inode` open. */
function holdsSocket(pid: number | 'self', inode: string): boolean {
  const dir = `/proc/${pid}/fd`;
  return fs.readdirSync(dir).some((fd) => {
    try {
      return fs.readlinkSync(path.join(dir, fd)) === `socket:[${inode}]`;
    } catch {
      return false; // closed meanwhile
    }
  });
}

/** Every serve.ts process whose parent is this test process. */
function serveChildren(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const ppid = Number(
          fs
            .readFileSync(`/proc/${d}/stat`, 'utf8')
            .replace(/^.*\) /s, '')
            .split(' ')[1],
        );
        return ppid === process.pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('scripts/serve.ts');
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('ads in a process of its own', () => {
  it('listens in a child process, not in this one', () => {
    const ads = stack.processes.ads;
    expect(ads.pid).toBeGreaterThan(0);
    expect(ads.pid).not.toBe(process.pid);
    expect(alive(ads.pid)).toBe(true);
    expect(stack.subgraphUrls.ads).toBe(ads.url);
    expect(Object.keys(stack.subgraphs).sort()).toEqual(['accounts', 'alerts', 'merchants', 'payments']);
    expect(fs.existsSync(path.join(dataDir, 'ads.sqlite'))).toBe(true);
    if (linux) {
      const inode = listeningInode(ads.port);
      expect(inode, `a listener on 127.0.0.1:${ads.port}`).toBeDefined();
      expect(holdsSocket(ads.pid, inode!)).toBe(true);
      expect(holdsSocket('self', inode!)).toBe(false);
    }
  });

  it.runIf(linux)('has its own private key in its environment and no other secret', () => {
    const environ = fs.readFileSync(`/proc/${stack.processes.ads.pid}/environ`, 'utf8');
    const env = Object.fromEntries(
      environ
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    expect(env[privateKeyVariable('ads')]).toBe(privateKeyPem(TEST_KEYS.ads));
    expect(Object.keys(env).filter((k) => /_PRIVATE_KEY/.test(k))).toEqual([privateKeyVariable('ads')]);
    // The gateway's public key (ads verifies the gateway's signatures), not its private key.
    expect(env.PAYGRAPH_GATEWAY_PUBLIC_KEY).toBe(publicKeyPem(createPublicKey(TEST_KEYS.gateway)));
    expect(env).not.toHaveProperty('PAYGRAPH_JWT_SECRET');
    expect(Object.keys(env).filter((k) => /DATABASE|^PG/.test(k))).toEqual([]);
    expect(env.PAYGRAPH_DATA_DIR).toBe(dataDir);
    // No secret's value under any name either.
    expect(environ).not.toContain(TEST_JWT_SECRET);
    for (const s of SERVICE_NAMES.filter((n) => n !== 'ads')) expect(environ).not.toContain(privateKeyPem(TEST_KEYS[s]));
    for (const v of Object.values(SUPERVISOR_SECRETS)) expect(environ).not.toContain(v);
    // Built from nothing: only what the service needs.
    const allowed =
      /^(NODE_ENV|LOG_LEVEL|HOST|PAYGRAPH_DATA_DIR|PAYGRAPH_ADS_PRIVATE_KEY|PAYGRAPH_GATEWAY_PUBLIC_KEY|PAYGRAPH_[A-Z]+_URL|PAYGRAPH_EGRESS_(GUARD|ALLOW)|PAYGRAPH_EXIT_WITH_STDIN)$/;
    expect(Object.keys(env).filter((k) => !allowed.test(k))).toEqual([]);
  });

  it('answers the gateway: sponsored offers with an advertising token', async () => {
    const r = await gql(QUERY);
    expect(r.errors).toBeUndefined();
    expect(r.data!.me.id).toBe(userId('alice'));
    expect(r.data!.me.sponsoredOffers!.length).toBeGreaterThan(0);
  });

  it('stopSubgraph stops its process (ads unreachable), startSubgraph starts a new one on the same port', { timeout: 90_000 }, async () => {
    const before = stack.processes.ads.pid;
    const health = stack.processes.ads.url.replace(/\/graphql$/, '/health');
    await stack.stopSubgraph('ads');
    expect(alive(before)).toBe(false);
    await expect(fetch(health)).rejects.toThrow();
    expect((await gql(QUERY)).errors?.length).toBeGreaterThan(0);

    await stack.startSubgraph('ads');
    const after = stack.processes.ads.pid;
    expect(after).not.toBe(before);
    expect(alive(after)).toBe(true);
    expect((await fetch(health)).status).toBe(200);
    const r = await gql(QUERY);
    expect(r.errors).toBeUndefined();
    expect(r.data!.me.sponsoredOffers!.length).toBeGreaterThan(0);
  });

  it('stop() leaves no process behind', { timeout: 60_000 }, async () => {
    const pid = stack.processes.ads.pid;
    await stack.stop();
    expect(alive(pid)).toBe(false);
    expect(stack.processes.ads.child.exitCode).toBe(0);
    if (linux) expect(serveChildren()).toEqual([]);
    // It stopped on SIGTERM, and said nothing on the way worse than the test's log level.
    expect(childLines.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
  });
});
