/**
 * A small keep-alive HTTP client over node:http, for every service-to-service call (gateway ->
 * subgraph fetches, the audit append, internal calls). On Node 20, undici's fetch (WHATWG
 * streams, AbortSignal, Headers objects) costs about five times the CPU of node:http per small
 * request (docs/performance.md).
 */
import http from 'node:http';
import https from 'node:https';

/** A whole response, body read. */
export interface HttpResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-call timeout (connect, send, wait, read); the request is destroyed with an ETIMEDOUT error. */
  timeoutMs: number;
  /** Keep-alive agent (default: one shared per protocol, see keepAliveAgent). */
  agent?: http.Agent;
  /** Aborts the request (e.g. a worker stopping while its long poll is pending); rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * A keep-alive agent. Idle sockets are kept per origin and reused; Node honours the server's
 * `Keep-Alive: timeout=N` hint (closing an idle socket a second before the server would), so a
 * reused socket is not one the server is about to drop.
 */
export function keepAliveAgent(protocol: 'http:' | 'https:' = 'http:'): http.Agent {
  const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  return protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

const sharedAgents = { 'http:': keepAliveAgent('http:'), 'https:': keepAliveAgent('https:') };

/**
 * One HTTP request over node:http with a keep-alive agent, resolving with the whole response.
 * Errors are node's own (`code` ECONNREFUSED, ECONNRESET, ...), or ETIMEDOUT after `timeoutMs`.
 */
export function httpRequest(url: string | URL, init: HttpRequestInit): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const body = init.body ?? '';
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = (secure ? https : http).request(
      target,
      {
        method: init.method ?? 'POST',
        agent: init.agent ?? sharedAgents[secure ? 'https:' : 'http:'],
        headers: { ...init.headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        // A response cut short (connection reset, destroyed on timeout) without an 'error' event.
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error(`response from ${target.origin} aborted`), { code: 'ECONNRESET' }));
        });
        res.on('end', () => {
          clearTimeout(timer);
          init.signal?.removeEventListener('abort', onAbort);
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            headers: res.headers,
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
          });
        });
      },
    );
    function fail(err: Error): void {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
      reject(err);
    }
    const onAbort = () =>
      req.destroy(init.signal?.reason instanceof Error ? init.signal.reason : Object.assign(new Error('request aborted'), { name: 'AbortError' }));
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`request to ${target.origin} timed out after ${init.timeoutMs} ms`), { code: 'ETIMEDOUT', name: 'TimeoutError' });
      req.destroy(err);
    }, init.timeoutMs);
    req.on('error', fail);
    if (init.signal?.aborted) onAbort();
    else init.signal?.addEventListener('abort', onAbort, { once: true });
    req.end(body);
  });
}
