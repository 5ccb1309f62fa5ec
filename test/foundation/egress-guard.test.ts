/**
 * No egress in other processes (docs/operations.md#no-egress): the egress guard
 * (lib/egress-guard.mjs) preloaded into a spawned `scripts/serve.ts gateway` lets it start and serve
 * without refusing anything (so the gateway connects to loopback only, and sets
 * APOLLO_TELEMETRY_DISABLED itself: the child's environment lacks it), and the guard does refuse a
 * connection outside loopback before anything leaves the machine. Only TEST-NET addresses
 * (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24: never routed) and a name under .invalid with a
 * lookup of its own are ever asked for, and the guard refuses them all before Node would connect.
 * The in-process stack: test/gateway/no-egress.test.ts.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { expect, it } from 'vitest';
import { ACTIVE_MARK, BLOCKED_CODE, BLOCKED_MARK, isLoopbackHost } from '../../lib/egress-guard.mjs';
import { SUBGRAPH_NAMES } from '../../lib/config.js';
import { EGRESS_GUARD, freePorts, spawnServe, stopChild } from '../../runtime/cluster.js';
import { privateKeyPem, privateKeyVariable } from '../../lib/transport/keys.js';
import { postGraphQL, startTestStack, TEST_JWT_SECRET, TEST_KEYS } from '../helpers/stack.js';

/** The test process's environment without the guard it passes down (NODE_OPTIONS) and without the telemetry switch. */
function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.APOLLO_TELEMETRY_DISABLED;
  return env;
}

async function waitHealthy(url: string, child: ChildProcess, lines: string[]): Promise<void> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}):\n${lines.join('\n')}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer at ${url}:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('a spawned gateway with the guard preloaded starts, answers /health, /ready and a query, and was refused nothing', { timeout: 90_000 }, async () => {
  const stack = await startTestStack();
  let child: ChildProcess | undefined;
  const lines: string[] = [];
  const stderr: string[] = [];
  try {
    const [port] = await freePorts(1);
    const env: NodeJS.ProcessEnv = {
      ...bareEnv(),
      PAYGRAPH_EGRESS_GUARD: '1',
      NODE_ENV: 'test',
      PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET,
      // The gateway's own private key, as in production; the in-process subgraphs trust its public key.
      [privateKeyVariable('gateway')]: privateKeyPem(TEST_KEYS.gateway),
      ...Object.fromEntries(SUBGRAPH_NAMES.map((n) => [`PAYGRAPH_${n.toUpperCase()}_URL`, stack.subgraphs[n].url])),
    };
    child = spawnServe(
      ['gateway', '--port', String(port), '--host', '127.0.0.1'],
      'gateway',
      env,
      (_, line, stream) => {
        if (stream === 'stderr') stderr.push(line);
      },
      lines,
    );
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(`${base}/health`, child, lines);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const query = '{ me { handle accounts { id balance { current { amount currency } } } } }';
    const token = await stack.token('alice');
    const viaChild = await postGraphQL(`${base}/graphql`, { query }, { authorization: `Bearer ${token}` });
    expect(viaChild.errors).toBeUndefined();
    expect(viaChild.data).toEqual((await stack.gql(query, undefined, token)).data);
  } finally {
    if (child) await stopChild(child);
    await stack.stop();
  }
  expect(child!.exitCode).toBe(0);
  // The guard was loaded in the child itself (a worker thread of the child may load it again and
  // say so too: still guarded).
  expect(stderr.filter((l) => l.startsWith(`${ACTIVE_MARK} in pid ${child!.pid}:`)).length).toBeGreaterThanOrEqual(1);
  expect(stderr.filter((l) => l.includes(BLOCKED_MARK))).toEqual([]);
});

/** Tries every kind of connection outside loopback, and one to loopback; prints what happened as JSON. */
const PROBE = `
import net from 'node:net';
import http from 'node:http';
import tls from 'node:tls';
const out = { events: [] };
const raw = net.connect(80, '192.0.2.1');
out.rawHandleCreated = raw._handle != null; // the real connect creates the socket's handle at once
raw.on('connect', () => out.events.push('raw connect')).on('lookup', () => out.events.push('raw lookup'));
const rawError = new Promise((r) => raw.on('error', (e) => r({ code: e.code, message: e.message })));
const httpError = new Promise((r) => http.get('http://192.0.2.1:8080/').on('error', (e) => r(e.code)));
const tlsError = new Promise((r) => tls.connect(443, '203.0.113.1').on('error', (e) => r(e.code)));
const fetchError = fetch('http://198.51.100.1/').then(() => 'answered', (e) => e.cause?.code);
let looked = false;
const lookup = (host, opts, cb) => { looked = true; cb(new Error('no lookup here')); };
const nameError = new Promise((r) => net.connect({ host: 'egress.invalid', port: 80, lookup }).on('error', (e) => r(e.code)));
const remap = (host, opts, cb) => (opts.all ? cb(null, [{ address: '192.0.2.1', family: 4 }]) : cb(null, '192.0.2.1', 4));
const remapped = net.connect({ host: 'localhost', port: 80, lookup: remap }).on('connect', () => out.events.push('remapped connect'));
const remappedError = new Promise((r) => remapped.on('error', (e) => r(e.code)));
const server = net.createServer((c) => c.end());
await new Promise((r) => server.listen(0, '127.0.0.1', r));
out.loopback = await new Promise((r) => net.connect(server.address().port, '127.0.0.1').on('connect', function () { this.destroy(); r('connected'); }).on('error', (e) => r(e.code)));
server.close();
Object.assign(out, { raw: await rawError, http: await httpError, tls: await tlsError, fetch: await fetchError, name: await nameError, looked, remapped: await remappedError });
process.stdout.write(JSON.stringify(out));
`;

function runProbe(nodeArgs: string[], env: NodeJS.ProcessEnv): Promise<{ out: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeArgs, '--input-type=module', '-e', PROBE], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`probe failed: ${err.message}\n${stderr}`));
      else resolve({ out: JSON.parse(stdout) as Record<string, unknown>, stderr });
    });
  });
}

function expectRefusedEverything({ out, stderr }: { out: Record<string, unknown>; stderr: string }): void {
  expect(out).toEqual({
    events: [], // never connected, never looked a name up
    rawHandleCreated: false, // no socket was even created: nothing could be sent
    raw: { code: BLOCKED_CODE, message: expect.stringContaining('192.0.2.1:80') },
    http: BLOCKED_CODE,
    tls: BLOCKED_CODE,
    fetch: BLOCKED_CODE,
    name: BLOCKED_CODE,
    looked: false,
    remapped: BLOCKED_CODE, // localhost, resolved to an address outside loopback
    loopback: 'connected',
  });
  const blocked = stderr.split('\n').filter((l) => l.startsWith(BLOCKED_MARK));
  expect(blocked.map((l) => l.slice(BLOCKED_MARK.length).trim().split(' ')[0])).toEqual(
    expect.arrayContaining(['192.0.2.1:80', '192.0.2.1:8080', '203.0.113.1:443', '198.51.100.1:80', 'egress.invalid:80', 'localhost:80']),
  );
}

it('refuses every connection outside loopback before anything leaves, naming the destination (node --import)', async () => {
  expectRefusedEverything(await runProbe(['--import', EGRESS_GUARD], bareEnv()));
});

it('guards the processes a guarded process spawns (the guard is in NODE_OPTIONS)', async () => {
  expect(process.env.NODE_OPTIONS).toContain(EGRESS_GUARD); // this test process is guarded (test/helpers/setup.ts)
  expectRefusedEverything(await runProbe([], process.env));
});

it('takes loopback and only loopback for loopback', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1'])
    expect(isLoopbackHost(host), host).toBe(true);
  for (const host of ['192.0.2.1', '10.0.0.1', '0.0.0.0', '::', '::ffff:192.0.2.1', 'localhost.example', 'example.com', '128.0.0.1', '127.example'])
    expect(isLoopbackHost(host), host).toBe(false);
});
