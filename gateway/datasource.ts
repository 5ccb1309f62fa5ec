/**
 * The gateway's subgraph data source: forwards the caller and request id, and signs the exact
 * body bytes it sends (fence layer 4) by wrapping the fetcher.
 *
 * Scale-out: the URL may be a comma-separated list of several processes of one subgraph
 * (`PAYGRAPH_PAYMENTS_URL=http://a/graphql,http://b/graphql`). Requests go round-robin over them;
 * a process that refuses the connection (down, restarting) is skipped: the request, which never
 * reached it, goes to the next one. Nothing else is retried (a reset or a timeout may have
 * executed a mutation), so those stay SUBGRAPH_UNAVAILABLE.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
type Fetcher = RemoteGraphQLDataSource['fetcher'];
import { parseUrlList } from '../lib/config.js';
import { httpRequest, type HttpResponse } from '../lib/http.js';
import { encodeCaller, signRaw, CALLER_HEADER, REQUEST_ID_HEADER } from '../lib/transport/signing.js';
import type { GatewayContext } from './context.js';

/** Subgraph fetch timeout. */
export const SUBGRAPH_TIMEOUT_MS = 10_000;

/** The processes of one subgraph, taken in turn. */
export class Replicas {
  readonly urls: readonly string[];
  private turn = 0;

  /** `urls`: one URL or a comma-separated list (lib/config.ts parseUrlList). */
  constructor(urls: string | readonly string[]) {
    this.urls = typeof urls === 'string' ? parseUrlList(urls) : [...urls];
    if (this.urls.length === 0) throw new Error('a subgraph needs at least one URL');
  }

  /** The next URL in turn. */
  next(): string {
    const url = this.urls[this.turn % this.urls.length]!;
    this.turn = (this.turn + 1) % this.urls.length;
    return url;
  }

  /** Every URL, starting with `first`, then the others in list order (failover order). */
  startingAt(first: string): string[] {
    const i = this.urls.indexOf(first);
    if (i < 0) return [first, ...this.urls];
    return [...this.urls.slice(i), ...this.urls.slice(0, i)];
  }
}

/** True when the request failed because nothing accepted the connection (the request was never sent). */
function connectionRefused(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // node:http errors carry the code themselves; fetch (undici) errors carry it in `cause`.
  return (err as { code?: unknown }).code === 'ECONNREFUSED' || (err.cause as { code?: unknown } | undefined)?.code === 'ECONNREFUSED';
}

/**
 * The part of a fetch Response that RemoteGraphQLDataSource reads (ok, status, statusText, url,
 * headers.get, json, text), over a whole response read by lib/http.ts httpRequest.
 */
function fetchResponse(url: string, r: HttpResponse) {
  const text = () => r.body.toString('utf8');
  return {
    ok: r.status >= 200 && r.status < 300,
    status: r.status,
    statusText: r.statusText,
    url,
    headers: {
      get(name: string): string | null {
        const v = r.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    text: async () => text(),
    json: async () => JSON.parse(text()) as unknown,
  };
}

/**
 * Signs every request with `key`. With `replicas`, a refused connection moves on to the next
 * process (each attempt signed afresh: new timestamp and nonce).
 */
export function signingFetcher(key: Buffer, replicas?: Replicas): Fetcher {
  return (async (url: string, init?: { headers?: Record<string, string>; body?: string; method?: string }) => {
    const body = init?.body ?? '';
    const targets = replicas && replicas.urls.length > 1 ? replicas.startingAt(url) : [url];
    let lastError: unknown;
    for (const target of targets) {
      const headers = { ...(init?.headers ?? {}) };
      Object.assign(headers, signRaw(key, headers[CALLER_HEADER] ?? '', body));
      try {
        // node:http with a keep-alive agent rather than fetch: a fraction of the CPU per call (lib/http.ts).
        return fetchResponse(target, await httpRequest(target, { method: init?.method ?? 'POST', headers, body, timeoutMs: SUBGRAPH_TIMEOUT_MS }));
      } catch (err) {
        lastError = err;
        if (!connectionRefused(err)) throw err;
      }
    }
    throw lastError;
  }) as unknown as Fetcher;
}

export class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  /** The subgraph's processes (one, or several from a comma-separated URL list). */
  readonly replicas: Replicas;

  constructor(
    url: string,
    key: Buffer,
    readonly serviceName: string = 'subgraph',
  ) {
    const replicas = new Replicas(url);
    super({ url: replicas.urls[0]!, fetcher: signingFetcher(key, replicas) });
    this.replicas = replicas;
  }

  /** A subgraph that cannot be reached (refused, reset, timed out) is a clear, retryable error. */
  override didEncounterError(error: Error, fetchRequest: Parameters<RemoteGraphQLDataSource['didEncounterError']>[1], fetchResponse?: Parameters<RemoteGraphQLDataSource['didEncounterError']>[2]): void {
    if (!fetchResponse) {
      throw new GraphQLError(`The ${this.serviceName} service is unavailable; try again shortly.`, {
        extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: this.serviceName },
        originalError: error,
      });
    }
    super.didEncounterError(error, fetchRequest, fetchResponse);
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    if (!request.http) return;
    // Round-robin over the subgraph's processes (a single URL: always that one).
    // (`url` is typed readonly, but RemoteGraphQLDataSource.process builds this object just before
    // calling us and fetches request.http.url afterwards: this is its documented hook point.)
    (request.http as { url: string }).url = this.replicas.next();
    const headers = request.http.headers;
    // Health checks and internal requests have no caller: they are anonymous.
    const caller = 'caller' in context && context.caller ? context.caller : { userId: null, purpose: null, client: null };
    headers.set(CALLER_HEADER, encodeCaller(caller));
    if ('requestId' in context && typeof context.requestId === 'string') headers.set(REQUEST_ID_HEADER, context.requestId);
  }
}
