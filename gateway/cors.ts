/**
 * CORS for browser apps on other origins: an allow-list of origins (PAYGRAPH_CORS_ORIGINS), the
 * preflight (OPTIONS) answered here, and the response headers of the actual request. Nothing is
 * allowed by default in production; in development, loopback origins on any port (a local web
 * app's dev server). `*` allows any origin, without credentials (the CORS rules forbid both).
 *
 * paygraph authenticates with a bearer token, not cookies, so "credentials" only matter to a
 * client that sends them (`credentials: 'include'`); for a listed origin they are allowed, so such
 * a client is not refused. A refused origin gets no CORS headers (the browser withholds the
 * response) and its preflight a 403 that says why. Apollo Server's CSRF prevention stays on for
 * the requests a browser sends without a preflight.
 */
import type http from 'node:http';

/** Request headers a browser app may send (what the preflight allows). */
export const CORS_ALLOWED_HEADERS = [
  'content-type',
  'authorization',
  'apollographql-client-name',
  'apollographql-client-version',
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'x-request-id',
];
/** Response headers a browser app may read beyond the safelisted ones. */
const EXPOSED_HEADERS = ['x-request-id', 'retry-after'];
const PREFLIGHT_MAX_AGE_S = 600;

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

export interface CorsPolicy {
  /** Whether `origin` may call the gateway from a browser. */
  allows(origin: string): boolean;
  /**
   * Handles CORS for one request: sets the response headers for an allowed origin, and answers a
   * preflight itself (returning true: the request is done).
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

/** `origins`: the allow-list (undefined: the default, none in production, loopback otherwise). */
export function corsPolicy(origins: readonly string[] | undefined, production: boolean): CorsPolicy {
  const any = origins?.includes('*') ?? false;
  const listed = new Set(origins ?? []);
  const allows = (origin: string) => (origins === undefined ? !production && LOOPBACK_ORIGIN.test(origin) : any || listed.has(origin));
  return {
    allows,
    handle(req, res) {
      const origin = req.headers.origin;
      const preflight = req.method === 'OPTIONS' && typeof req.headers['access-control-request-method'] === 'string';
      if (typeof origin !== 'string') return false;
      res.setHeader('vary', 'Origin');
      if (!allows(origin)) {
        if (!preflight) return false;
        res.writeHead(403, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: `origin ${origin} is not allowed (PAYGRAPH_CORS_ORIGINS)` }));
        return true;
      }
      // With `*` the origin is echoed all the same (a listed value), but credentials are not allowed.
      res.setHeader('access-control-allow-origin', origin);
      if (!any) res.setHeader('access-control-allow-credentials', 'true');
      if (!preflight) {
        res.setHeader('access-control-expose-headers', EXPOSED_HEADERS.join(', '));
        return false;
      }
      res.setHeader('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader('access-control-allow-headers', CORS_ALLOWED_HEADERS.join(', '));
      res.setHeader('access-control-max-age', String(PREFLIGHT_MAX_AGE_S));
      res.writeHead(204);
      res.end();
      return true;
    },
  };
}
