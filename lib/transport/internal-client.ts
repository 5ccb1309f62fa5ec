/**
 * The client for signed service-to-service calls outside the graph (POST /internal/<route>): the
 * alerts worker reading the payments event feed, the alerts freezer, the gateway appending audit
 * records. Each call is signed with the peer's internal key (signing.ts deriveInternalKey), goes
 * over the keep-alive client (http-client.ts) and fails over across the peer's processes
 * (replicas.ts withFailover).
 */
import { ANONYMOUS } from '../auth.js';
import { httpRequest } from './http-client.js';
import { withFailover } from './replicas.js';
import { REQUEST_ID_HEADER, signRequest } from './signing.js';

export class InternalCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface CallInternalOptions {
  requestId?: string | null;
  /**
   * Whole-call timeout (default 10 s). For a long poll (e.g. the payments `events` route with
   * `waitMs`) it must exceed the wait: use waitMs plus the normal timeout.
   */
  timeoutMs?: number;
  /** Aborts the call (e.g. a worker stopping while its long poll is pending). */
  signal?: AbortSignal;
}

/** The base URLs of a peer's processes: a comma-separated list, a trailing /graphql ignored. */
export function internalBaseUrls(list: string): string[] {
  return list
    .split(',')
    .map((u) => u.trim().replace(/\/graphql$/, ''))
    .filter((u) => u.length > 0);
}

/**
 * POST a JSON body to `<baseUrl>/internal/<route>`, signed with the peer's internal key.
 * `baseUrl` may list the peer's processes, comma-separated, the preferred one first (a cluster
 * lists each process's "home" peer first): a refused connection moves on to the next.
 */
export async function callInternal<T>(baseUrl: string, key: Buffer, route: string, body: unknown, opts: CallInternalOptions = {}): Promise<T> {
  const urls = internalBaseUrls(baseUrl);
  if (urls.length === 0) throw new Error(`internal call ${route}: no URL for the peer`);
  const text = JSON.stringify(body);
  const res = await withFailover(urls, (url) =>
    httpRequest(`${url}/internal/${route}`, {
      // Signed afresh for each attempt: a new timestamp and nonce.
      headers: { 'content-type': 'application/json', ...signRequest(key, ANONYMOUS, text), ...(opts.requestId ? { [REQUEST_ID_HEADER]: opts.requestId } : {}) },
      body: text,
      timeoutMs: opts.timeoutMs ?? 10_000,
      signal: opts.signal,
    }),
  );
  const out = res.body.toString('utf8');
  if (res.status !== 200) throw new InternalCallError(res.status, `internal call ${route} failed with ${res.status}: ${out.slice(0, 200)}`);
  return JSON.parse(out) as T;
}
