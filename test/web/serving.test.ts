/**
 * The gateway's web-app hook (gateway/web-app.ts, runtime/web-app.ts) over real HTTP: the built
 * app at /app with its security headers, screens as index.html, nothing outside the build
 * directory; the development sign-in lists the seeded users and mints tokens the gateway accepts,
 * for loopback only (a rebinding page's Host or Origin is refused), and does not exist when
 * NODE_ENV=production.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import os from 'node:os';
import { createWebApp, isLoopbackAddress, isLoopbackHostHeader } from '../../gateway/web-app.js';
import { close, listen } from '../../lib/http.js';
import { stackWebAppFor, viteMissing, WEB_DIST } from '../../runtime/web-app.js';
import { ensureWebAppBuilt, startWebStack } from '../helpers/browser.js';
import { op } from '../helpers/contract.js';
import { expectData } from '../helpers/matchers.js';
import { randomSecret, startTestStack, TEST_JWT_SECRET, type TestStack } from '../helpers/stack.js';

/** A raw request (fetch normalizes paths and forbids a Host header). */
function raw(base: string, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const u = new URL(base);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: p, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('development', () => {
  let stack: TestStack & { appUrl: string };
  beforeAll(async () => {
    stack = await startWebStack();
  });
  afterAll(() => stack?.stop());

  it('serves the built app at /app/ with a strict CSP, hashed assets as immutable, and screens as index.html', async () => {
    const redirect = await raw(stack.url, '/app');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe('/app/');
    const index = await raw(stack.url, '/app/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toContain("default-src 'self'");
    expect(index.headers['cache-control']).toBe('no-cache');
    const script = /src="\/app\/(assets\/[^"]+\.js)"/.exec(index.body)![1]!;
    const asset = await raw(stack.url, `/app/${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toContain('immutable');
    expect(asset.body).toBe(fs.readFileSync(path.join(WEB_DIST, script), 'utf8'));
    expect((await raw(stack.url, '/app/history')).body).toBe(index.body);
    expect((await raw(stack.url, '/app/assets/nope.js')).status).toBe(404);
    expect((await raw(stack.url, '/app/', { method: 'POST' })).status).toBe(405);
  });

  it('never serves a file outside the build directory', async () => {
    for (const p of ['/app/../package.json', '/app/%2e%2e/package.json', '/app/%2e%2e%2f%2e%2e%2fpackage.json', '/app/..%5c..%5cpackage.json']) {
      const res = await raw(stack.url, p);
      expect(res.body, p).not.toContain('"name": "paygraph"');
    }
    expect((await raw(stack.url, '/app/%E0%A4%A')).status).toBe(400);
  });

  it('lists the seeded users and mints a payments token the gateway accepts; an unknown handle gets none', async () => {
    const users = await raw(stack.url, '/dev/users');
    expect(users.status).toBe(200);
    expect((JSON.parse(users.body) as { users: { handle: string }[] }).users.map((u) => u.handle)).toEqual(['alice', 'bob', 'carol', 'dave']);
    const minted = await raw(stack.url, '/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handle":"alice"}' });
    expect(minted.status).toBe(200);
    expect(minted.headers['cache-control']).toBe('no-store');
    const { token } = JSON.parse(minted.body) as { token: string };
    const me = expectData(await stack.gql<{ me: { handle: string } }>(op('MyBalances'), {}, token)).me;
    expect(me.handle).toBe('alice');
    expect((await raw(stack.url, '/dev/token', { method: 'POST', body: '{"handle":"mallory"}' })).status).toBe(404);
    expect((await raw(stack.url, '/dev/token', { method: 'POST', body: 'not json' })).status).toBe(400);
  });

  it('answers only a loopback peer naming a loopback host: a DNS-rebinding Host or a foreign Origin is refused', async () => {
    const post = (headers: Record<string, string>) => raw(stack.url, '/dev/token', { method: 'POST', headers, body: '{"handle":"alice"}' });
    expect((await post({ host: 'evil.example' })).status).toBe(403);
    expect((await post({ host: `evil.example:${new URL(stack.url).port}` })).status).toBe(403);
    expect((await post({ origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ origin: 'null' })).status).toBe(403);
    expect((await raw(stack.url, '/dev/users', { headers: { host: 'attacker.test' } })).status).toBe(403);
    expect((await post({ origin: `http://localhost:${new URL(stack.url).port}` })).status).toBe(200);
  });

  it('knows a loopback peer from any other (the check the route makes on the socket)', () => {
    for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['10.0.0.5', '192.168.1.2', '::ffff:192.168.1.2', '172.17.0.1', 'fe80::1', '0.0.0.0', '', undefined])
      expect(isLoopbackAddress(a), String(a)).toBe(false);
    for (const h of ['localhost', 'localhost:4000', '127.0.0.1:80', '[::1]:4000']) expect(isLoopbackHostHeader(h), h).toBe(true);
    for (const h of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', '[::2]:1', undefined])
      expect(isLoopbackHostHeader(h), String(h)).toBe(false);
  });
});

describe('NODE_ENV=production', () => {
  let stack: TestStack;
  beforeAll(async () => {
    await ensureWebAppBuilt();
    // What npm start builds from a production configuration, whose HS256 secret could mint.
    const config = loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_SECRET: TEST_JWT_SECRET, PAYGRAPH_DATA_DIR: `/tmp/${randomSecret('unused')}` });
    stack = await startTestStack({ production: true, webApp: stackWebAppFor(config) });
  });
  afterAll(() => stack?.stop());

  it('serves the app, and the development sign-in routes do not exist (404, as any unknown path)', async () => {
    expect((await raw(stack.url, '/app/')).status).toBe(200);
    expect((await raw(stack.url, '/dev/users')).status).toBe(404);
    const minted = await raw(stack.url, '/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handle":"alice"}' });
    expect(minted.status).toBe(404);
    expect(minted.body).not.toContain('eyJ');
    expect(minted.body).toBe((await raw(stack.url, '/no-such-path')).body);
  });
});

describe('not built', () => {
  it('answers /app with 503 saying how to build it, and an install without Vite is told apart from a failed build', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-web-'));
    const handler = createWebApp({ distDir: empty, production: false });
    const server = http.createServer((req, res) => void handler(req, res, (req.url ?? '/').split('?')[0]!));
    try {
      const base = await listen(server, 0, '127.0.0.1');
      const res = await raw(base, '/app/');
      expect(res.status).toBe(503);
      expect(res.body).toContain('npm run build:web');
    } finally {
      await close(server);
      fs.rmSync(empty, { recursive: true });
    }
    expect(viteMissing({ code: 'ERR_MODULE_NOT_FOUND', message: "Cannot find package 'vite' imported from /x/runtime/web-app.ts" })).toBe(true);
    expect(viteMissing({ code: 'ERR_MODULE_NOT_FOUND', message: "Cannot find package 'react' imported from /x" })).toBe(false);
    expect(viteMissing(new Error('[vite]: Rollup failed to resolve import'))).toBe(false);
  });
});
