/**
 * The reference web client's hook in the gateway: serves the built single-page app (web/dist) at
 * /app, on the gateway's own origin so that the app reaches /graphql (HTTP and graphql-ws) with no
 * CORS, and, in development only, the sign-in routes that mint tokens for seeded users.
 *
 * The gateway knows nothing of seeds or minting keys: whoever starts it (runtime/web-app.ts) hands
 * it a DevSignIn. The dev routes are absent in production (404, whatever was handed), and answer
 * only a loopback peer that names a loopback host (a DNS-rebinding page reaches 127.0.0.1 with its
 * own Host header and Origin, and is refused).
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { readBody, sendJson } from '../lib/http.js';

/** Answers the request and returns true when it is the web app's; false leaves it to the gateway. */
export type WebAppHandler = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => Promise<boolean>;

export interface DevSignIn {
  /** The seeded users the sign-in screen lists. */
  users: readonly { handle: string; name: string }[];
  /** A payments token for one of them (null for an unknown handle). */
  mint(handle: string): Promise<string | null>;
}

export interface WebAppOptions {
  /** The built app (index.html and assets/); missing: /app answers 503 saying how to build it. */
  distDir: string;
  production: boolean;
  /** Development sign-in; ignored when production is set. */
  devSignIn?: DevSignIn;
}

export const APP_PATH = '/app';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

// The app loads only its own scripts and styles and talks only to its own origin ('self' covers
// ws:// on the same host and port in CSP 3); nothing may frame it.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** A peer address on the loopback network (IPv4 127/8, ::1, or IPv4-mapped 127/8). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.replace(/^::ffff:/i, '');
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** A Host (or Origin's host) naming loopback: localhost, 127/8 or [::1], with any port. */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host.trim().toLowerCase());
  if (!m) return false;
  const h = m[1]!.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function loopbackOnly(req: http.IncomingMessage): boolean {
  if (!isLoopbackAddress(req.socket.remoteAddress) || !isLoopbackHostHeader(req.headers.host)) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return isLoopbackHostHeader(new URL(origin).host);
  } catch {
    return false;
  }
}

export function createWebApp(opts: WebAppOptions): WebAppHandler {
  const root = path.resolve(opts.distDir);
  const dev = opts.production ? undefined : opts.devSignIn;

  const sendFile = (res: http.ServerResponse, file: string, immutable: boolean) => {
    const body = fs.readFileSync(file);
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      // Vite names assets by their content hash; index.html must always be fetched anew.
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(body);
  };

  const serveApp = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    if (pathname === APP_PATH) {
      res.writeHead(308, { location: `${APP_PATH}/` });
      return res.end();
    }
    const index = path.join(root, 'index.html');
    if (!fs.existsSync(index)) return sendJson(res, 503, { error: 'the web app is not built: run `npm run build:web` (npm install and npm start do it)' });
    let rel: string;
    try {
      rel = decodeURIComponent(pathname.slice(APP_PATH.length + 1));
    } catch {
      return sendJson(res, 400, { error: 'bad path' });
    }
    const file = path.resolve(root, rel);
    // Never outside the build directory, whatever the path says.
    if (rel && file.startsWith(root + path.sep) && fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      return sendFile(res, file, rel.startsWith('assets/'));
    if (rel.startsWith('assets/')) return sendJson(res, 404, { error: 'not found' });
    // Any other path is a screen of the single-page app.
    return sendFile(res, index, false);
  };

  const serveDev = async (req: http.IncomingMessage, res: http.ServerResponse, pathname: string, dev: DevSignIn) => {
    if (!loopbackOnly(req)) return sendJson(res, 403, { error: 'development sign-in answers loopback only' });
    if (pathname === '/dev/users' && req.method === 'GET') return sendJson(res, 200, { users: dev.users }, { 'cache-control': 'no-store' });
    if (pathname === '/dev/token' && req.method === 'POST') {
      let handle: unknown;
      try {
        handle = (JSON.parse((await readBody(req, 10_000)).toString('utf8')) as { handle?: unknown }).handle;
      } catch {
        return sendJson(res, 400, { error: 'body must be JSON: {"handle": "<seeded user>"}' });
      }
      const token = typeof handle === 'string' ? await dev.mint(handle) : null;
      if (token === null) return sendJson(res, 404, { error: `no seeded user ${JSON.stringify(handle)}` });
      return sendJson(res, 200, { token }, { 'cache-control': 'no-store' });
    }
    return sendJson(res, 404, { error: 'not found' });
  };

  return async (req, res, pathname) => {
    if (pathname === APP_PATH || pathname.startsWith(`${APP_PATH}/`)) {
      serveApp(req, res, pathname);
      return true;
    }
    // Without a DevSignIn (production, or none handed) the dev routes do not exist: the gateway's own 404.
    if (dev && pathname.startsWith('/dev/')) {
      await serveDev(req, res, pathname, dev);
      return true;
    }
    return false;
  };
}
