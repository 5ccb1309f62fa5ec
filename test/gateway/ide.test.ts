/**
 * The development IDE (gateway/ide.ts): GraphiQL at GET /graphql for a browser, with the page and
 * every asset it references (and every module those import) served from the gateway's own
 * origin, a Content-Security-Policy that allows nothing else, no Apollo Sandbox, and nothing at
 * all in production.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../helpers/stack.js';

/** A headless Chromium, where the machine has one (the browser check below is skipped otherwise). */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((f) => fs.existsSync(f));

const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

/**
 * Every URL a page refers to (src/href attributes; `module`: a <script type="module">), or a
 * JavaScript module imports (static imports and re-exports: modules themselves). Classic scripts
 * and styles import nothing.
 */
function references(text: string, kind: 'page' | 'module'): { ref: string; module: boolean }[] {
  if (kind === 'page')
    return [...text.matchAll(/<(script|link)\b([^>]*)>/g)].flatMap((m) => {
      const ref = /\s(?:src|href)="([^"]+)"/.exec(m[2]!)?.[1];
      return ref ? [{ ref, module: m[1] === 'script' && /type="module"/.test(m[2]!) }] : [];
    });
  return [...text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]/gm)].map((m) => ({
    ref: (m[1] ?? m[2])!,
    module: true,
  }));
}

describe('in development', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('serves GraphiQL, and every asset it loads, transitively, from the gateway origin', async () => {
    const origin = new URL(stack.url).origin;
    const page = await fetch(stack.url, { headers: browser });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('GraphiQL');
    expect(html).not.toMatch(/sandbox|embeddable-sandbox|cdn\.|unpkg|jsdelivr|apollographql\.com/i);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/https?:\/\//);

    const seen = new Set<string>();
    const queue = references(html, 'page').map((r) => ({ url: new URL(r.ref, stack.url).href, module: r.module }));
    expect(queue.length).toBeGreaterThanOrEqual(5);
    while (queue.length) {
      const { url, module } = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      expect(new URL(url).origin, url).toBe(origin);
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type'), url).toMatch(/^(text\/javascript|text\/css)/);
      const text = await res.text();
      if (module) for (const r of references(text, 'module')) queue.push({ url: new URL(r.ref, url).href, module: true });
    }
    // The page, its styles, React, GraphiQL, the start script, graphql-ws's client and its chunk.
    expect([...seen].map((u) => new URL(u).pathname)).toEqual(expect.arrayContaining(['/ide/graphiql.min.js', '/ide/start.js', '/ide/graphql-ws/client.js']));
    expect(seen.size).toBeGreaterThanOrEqual(7);
  });

  it.skipIf(!CHROMIUM)(
    'renders in a real browser with no Content-Security-Policy refusal or console error',
    async () => {
      const { stdout, stderr } = await promisify(execFile)(
        CHROMIUM!,
        ['--headless=new', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=8000', '--dump-dom', stack.url],
        { timeout: 60_000, maxBuffer: 20_000_000 },
      );
      expect(stdout).toContain('data-testid="graphiql-container"');
      expect(stdout).toContain('MyBalances'); // the default query, in the editor
      expect(stderr).not.toMatch(/Refused to|Content Security Policy|Uncaught/);
    },
    90_000,
  );

  it('still answers GraphQL clients on GET /graphql, and 404 for an unknown asset', async () => {
    const res = await fetch(`${stack.url}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { accept: 'application/json', 'apollo-require-preflight': 'true' },
    });
    expect(((await res.json()) as { data: unknown }).data).toEqual({ __typename: 'Query' });
    expect((await fetch(`${stack.url.replace(/\/graphql$/, '')}/ide/../package.json`)).status).toBe(404);
    expect((await fetch(`${stack.url.replace(/\/graphql$/, '')}/ide/nothing.js`)).status).toBe(404);
  });
});

describe('in production', () => {
  it('is off: no page, and 404 for every asset', async () => {
    const stack = await startTestStack({ production: true });
    try {
      const page = await fetch(stack.url, { headers: browser });
      expect(page.status).not.toBe(200);
      expect(await page.text()).not.toMatch(/GraphiQL|sandbox/i);
      const base = stack.url.replace(/\/graphql$/, '');
      for (const asset of ['/ide/graphiql.min.js', '/ide/start.js', '/ide/react.production.min.js', '/ide/graphql-ws/client.js'])
        expect((await fetch(`${base}${asset}`)).status, asset).toBe(404);
    } finally {
      await stack.stop();
    }
  });
});
