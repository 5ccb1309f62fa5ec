/**
 * The development IDE: GraphiQL, served by the gateway itself at GET /graphql (a browser's
 * `Accept: text/html`) with every asset under /ide/, so that it works offline and runs no
 * third-party code from elsewhere next to bank data (it replaces Apollo Sandbox, which loaded
 * from a CDN). Off in production: no page, and /ide/ answers 404.
 *
 * Packaging (docs/libraries.md): the pre-built browser bundles the npm packages ship, served as
 * they are, with no build step: graphiql@3's `graphiql.min.js` / `graphiql.min.css` (a UMD
 * bundle over global React), react@18's and react-dom@18's `umd/` builds (installed under the
 * aliases react18 and react-dom18: the web app, web/, uses React 19, which ships no UMD build;
 * package.json's overrides let graphiql's npm peers resolve to it, since only its bundle is served), graphql-ws's browser
 * ES module client (`dist/client.js` and the chunk it imports), and ide/start.js, our own start
 * script (a fetcher: HTTP POST for queries and mutations, graphql-ws for subscriptions). They are
 * development dependencies, resolved only when the IDE is on. The page's Content-Security-Policy
 * allows nothing but this origin, so a browser refuses anything else.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

interface Asset {
  file: string;
  type: string;
}

function assets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const dir = (pkg: string) => path.dirname(require.resolve(`${pkg}/package.json`));
  const js = 'text/javascript; charset=utf-8';
  const map = new Map<string, Asset>([
    ['graphiql.min.css', { file: path.join(dir('graphiql'), 'graphiql.min.css'), type: 'text/css; charset=utf-8' }],
    ['graphiql.min.js', { file: path.join(dir('graphiql'), 'graphiql.min.js'), type: js }],
    ['react.production.min.js', { file: path.join(dir('react18'), 'umd', 'react.production.min.js'), type: js }],
    ['react-dom.production.min.js', { file: path.join(dir('react-dom18'), 'umd', 'react-dom.production.min.js'), type: js }],
    ['start.js', { file: path.join(HERE, 'ide', 'start.js'), type: js }],
  ]);
  // graphql-ws's browser client and the chunk(s) it imports, by their file names.
  const wsDist = path.join(dir('graphql-ws'), 'dist');
  for (const f of fs.readdirSync(wsDist))
    if (f === 'client.js' || /^common-[\w-]+\.js$/.test(f)) map.set(`graphql-ws/${f}`, { file: path.join(wsDist, f), type: js });
  return map;
}

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>paygraph · GraphiQL (development)</title>
    <link rel="stylesheet" href="/ide/graphiql.min.css" />
    <style>
      body { margin: 0; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="/ide/react.production.min.js"></script>
    <script src="/ide/react-dom.production.min.js"></script>
    <script src="/ide/graphiql.min.js"></script>
    <script type="module" src="/ide/start.js"></script>
  </body>
</html>
`;

/** Nothing from elsewhere: scripts, styles, images, fonts and connections from this origin only (GraphiQL sets inline styles). */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface Ide {
  /** Serves the page or an asset and returns true, or returns false: not an IDE request. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean;
}

/** A browser asking for a page (not a GraphQL client): GET with text/html first in Accept. */
function wantsPage(req: http.IncomingMessage): boolean {
  return req.method === 'GET' && /^\s*text\/html/.test(req.headers.accept ?? '') && !(req.url ?? '').includes('query=');
}

export function createIde(enabled: boolean): Ide {
  if (!enabled)
    return {
      handle(_req, res, p) {
        if (!p.startsWith('/ide/')) return false;
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: 'not found; the IDE is off in production' }));
        return true;
      },
    };
  const files = assets();
  const cache = new Map<string, Buffer>();
  return {
    handle(req, res, p) {
      if (p === '/graphql' && wantsPage(req)) {
        const host = req.headers.host ?? '';
        // connect-src 'self' does not cover ws: in every browser: this host's WebSocket explicitly.
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': `${CSP.replace("connect-src 'self'", `connect-src 'self' ws://${host} wss://${host}`)}`,
          'x-content-type-options': 'nosniff',
          'cache-control': 'no-store',
        });
        res.end(PAGE);
        return true;
      }
      if (!p.startsWith('/ide/')) return false;
      const asset = files.get(p.slice('/ide/'.length));
      if (!asset || req.method !== 'GET') {
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: 'not found' }));
        return true;
      }
      let body = cache.get(asset.file);
      if (!body) cache.set(asset.file, (body = fs.readFileSync(asset.file)));
      res.writeHead(200, { 'content-type': asset.type, 'content-length': body.length, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' });
      res.end(body);
      return true;
    },
  };
}
