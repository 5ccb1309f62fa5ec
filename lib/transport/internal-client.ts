/**
 * Signed service-to-service calls (outside the graph): e.g. the alerts worker reading the payments
 * event feed, the gateway appending audit records. Each subgraph's internal routes verify a key of
 * their own, derived from the gateway secret, handed only to the services that need it.
 */
import { ANONYMOUS } from '../auth.js';
import type { SubgraphName } from '../config.js';
import { deriveSubgraphKey, REQUEST_ID_HEADER, signRequest } from './signing.js';

export function deriveInternalKey(gatewaySecret: string, subgraph: SubgraphName): Buffer {
  return deriveSubgraphKey(gatewaySecret, `${subgraph}/internal`);
}

export class InternalCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface CallInternalOptions {
  requestId?: string;
  /**
   * Whole-call timeout (default 10 s). For a long poll (e.g. the payments `events` route with
   * `waitMs`) it must exceed the wait: use waitMs plus the normal timeout. Connections are
   * keep-alive (undici's defaults): a request that waits holds its connection, the next call
   * reuses it; no socket idle timeout applies while a response is pending.
   */
  timeoutMs?: number;
  /** Aborts the call (e.g. a worker stopping while its long poll is pending). */
  signal?: AbortSignal;
}

/** True when a request failed because nothing accepted the connection: it was never sent, so another process may take it. */
export function isConnectionRefused(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // node:http errors carry the code themselves; fetch (undici) errors carry it in `cause`.
  return (err as { code?: unknown }).code === 'ECONNREFUSED' || (err.cause as { code?: unknown } | undefined)?.code === 'ECONNREFUSED';
}

/**
 * POST a JSON body to `<baseUrl>/internal/<route>`, signed with the peer's internal key.
 * `baseUrl` may be a comma-separated list of the peer's processes, the preferred one first (a
 * cluster lists each process's "home" peer first): a refused connection moves on to the next.
 * Nothing else is retried, as the call may have run.
 */
export async function callInternal<T>(baseUrl: string, key: Buffer, route: string, body: unknown, opts: CallInternalOptions = {}): Promise<T> {
  const urls = baseUrl.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  for (let i = 0; ; i++) {
    try {
      return await callOne<T>(urls[i]!, key, route, body, opts);
    } catch (err) {
      if (i + 1 < urls.length && isConnectionRefused(err)) continue;
      throw err;
    }
  }
}

async function callOne<T>(baseUrl: string, key: Buffer, route: string, body: unknown, opts: CallInternalOptions): Promise<T> {
  const text = JSON.stringify(body);
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  const res = await fetch(`${baseUrl}/internal/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signRequest(key, ANONYMOUS, text), ...(opts.requestId ? { [REQUEST_ID_HEADER]: opts.requestId } : {}) },
    body: text,
    signal: opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout,
  });
  const out = await res.text();
  if (!res.ok) throw new InternalCallError(res.status, `internal call ${route} failed with ${res.status}: ${out.slice(0, 200)}`);
  return JSON.parse(out) as T;
}
