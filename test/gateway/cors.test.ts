/**
 * CORS (gateway/cors.ts) with real preflight requests, as a browser sends them: an allow-list
 * (PAYGRAPH_CORS_ORIGINS), credentials for listed origins, nothing by default in production, and
 * loopback origins only by default in development.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corsOrigins } from '../../lib/config.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const APP = 'https://app.example.com';

function preflight(url: string, origin: string, headers = 'content-type, authorization') {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
  });
}

function post(url: string, origin: string) {
  return fetch(url, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
}

describe('with an allow-list', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      production: true,
      gateway: { corsOrigins: corsOrigins(`${APP}, http://localhost:5173`), trustedDocuments: { mode: 'any' } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers the preflight of a listed origin, with credentials, methods and the headers an app sends', async () => {
    const res = await preflight(stack.url, APP, 'content-type, authorization, apollographql-client-name');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = res.headers.get('access-control-allow-headers')!.split(/,\s*/);
    for (const h of ['content-type', 'authorization', 'apollographql-client-name']) expect(allowed).toContain(h);
    expect(res.headers.get('vary')).toMatch(/Origin/);
    expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
  });

  it('lets a listed origin read the response (and the request id), and gives others no CORS headers', async () => {
    const ok = await post(stack.url, APP);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('access-control-expose-headers')).toContain('x-request-id');
    const other = await post(stack.url, 'https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses the preflight of an unlisted origin', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'null']) {
      const res = await preflight(stack.url, origin);
      expect(res.status, origin).toBe(403);
      expect(res.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it('rejects a malformed allow-list at start', () => {
    expect(() => corsOrigins('app.example.com')).toThrow(/PAYGRAPH_CORS_ORIGINS/);
    expect(() => corsOrigins('https://app.example.com/path')).toThrow(/not an origin/);
    expect(corsOrigins('https://a.example/, https://b.example:8443')).toEqual(['https://a.example', 'https://b.example:8443']);
  });
});

describe('defaults', () => {
  it('allow nothing in production', async () => {
    const stack = await startTestStack({ production: true });
    try {
      for (const origin of ['http://localhost:3000', APP]) expect((await preflight(stack.url, origin)).status).toBe(403);
    } finally {
      await stack.stop();
    }
  });

  it('allow loopback origins only in development', async () => {
    const stack = await startTestStack();
    try {
      for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:5173']) {
        const res = await preflight(stack.url, origin);
        expect(res.status, origin).toBe(204);
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      }
      expect((await preflight(stack.url, APP)).status).toBe(403);
      expect((await preflight(stack.url, 'http://localhost.evil.example')).status).toBe(403);
    } finally {
      await stack.stop();
    }
  });

  it('allow any origin with `*`, without credentials', async () => {
    const stack = await startTestStack({ gateway: { corsOrigins: corsOrigins('*') } });
    try {
      const res = await preflight(stack.url, APP);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await stack.stop();
    }
  });
});
