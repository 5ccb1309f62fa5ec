/**
 * The gateway's subgraph data source: forwards the caller and request id, and signs each request
 * for its subgraph with the gateway's own private key (fence layer 4; lib/transport/signing.ts:
 * method, path, a digest of the exact body bytes, the caller and the target subgraph) by
 * wrapping the fetcher.
 *
 * Scale-out: the URL may be a comma-separated list of several processes of one subgraph
 * (`PAYGRAPH_PAYMENTS_URL=http://a/graphql,http://b/graphql`). Requests go round-robin over them;
 * a process that refuses the connection (down, restarting) is skipped: the request, which never
 * reached it, goes to the next one. Nothing else is retried (a reset or a timeout may have
 * executed a mutation), so those stay SUBGRAPH_UNAVAILABLE.
 *
 * Traces (lib/tracing.ts): each attempt is a client span (a child of @apollo/gateway's
 * `gateway.fetch`), and a payments-zone subgraph is sent its `traceparent`, outside the signature
 * (lib/transport/signing.ts explains why). The advertising zone is sent no trace context: a
 * trace id is an identifier shared with the payments calls of the same operation, and ads is
 * told nothing it does not need (docs/fence.md); its fetch still shows in the trace, as the
 * gateway's client span.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { appError } from '../lib/errors.js';
import { injectTraceContext, SpanKind, withSpan } from '../lib/tracing.js';
import { zoneOf } from '../fence/policy.js';
import { httpRequest, type HttpResponse } from '../lib/transport/http-client.js';
import { Replicas, withFailover } from '../lib/transport/replicas.js';
import type { SubgraphName } from '../lib/config.js';
import type { Signer } from '../lib/transport/keys.js';
import { CALLER_HEADER, encodeCaller, REQUEST_ID_HEADER, signMessage } from '../lib/transport/signing.js';
import type { GatewayContext } from './context.js';

/** Subgraph fetch timeout. */
export const SUBGRAPH_TIMEOUT_MS = 10_000;

/**
 * The part of a fetch Response that RemoteGraphQLDataSource reads (ok, status, statusText, url,
 * headers.get, json, text), over a whole response read by lib/transport/http-client.ts httpRequest.
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

type Fetcher = RemoteGraphQLDataSource['fetcher'];

/**
 * Signs every request as `signer` for `subgraph` (each attempt afresh: a new time and nonce) and,
 * with `replicas`, fails over to the subgraph's next process on a refused connection.
 */
export function signingFetcher(signer: Signer, subgraph: SubgraphName, replicas?: Replicas): Fetcher {
  return (async (url: string, init?: { headers?: Record<string, string>; body?: string; method?: string }) => {
    const body = init?.body ?? '';
    const method = init?.method ?? 'POST';
    const targets = replicas && replicas.urls.length > 1 ? replicas.startingAt(url) : [url];
    const attrs = { 'http.request.method': method, 'paygraph.subgraph': subgraph };
    return withFailover(targets, (target) =>
      withSpan('gateway', `${method} ${subgraph}`, { kind: SpanKind.CLIENT, attributes: { ...attrs, 'url.full': target } }, async (span) => {
        const headers = { ...(init?.headers ?? {}) };
        const caller = headers[CALLER_HEADER] ?? encodeCaller({ userId: null, purpose: null, client: null });
        Object.assign(headers, await signMessage(signer, { method, path: new URL(target).pathname, target: subgraph, caller, body }));
        if (zoneOf(subgraph) === 'payments') injectTraceContext(headers);
        const res = await httpRequest(target, { method, headers, body, timeoutMs: SUBGRAPH_TIMEOUT_MS });
        span.setAttribute('http.response.status_code', res.status);
        return fetchResponse(target, res);
      }),
    );
  }) as unknown as Fetcher;
}

/** A subgraph that cannot be reached (refused, reset, timed out): a clear, retryable error. */
export function subgraphUnavailable(serviceName: string, cause?: Error): GraphQLError {
  return appError('SUBGRAPH_UNAVAILABLE', `The ${serviceName} service is unavailable; try again shortly.`, { serviceName }, cause);
}

export class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  /** The subgraph's processes (one, or several from a comma-separated URL list). */
  readonly replicas: Replicas;

  constructor(
    url: string,
    signer: Signer,
    readonly serviceName: SubgraphName,
  ) {
    const replicas = new Replicas(url);
    super({ url: replicas.urls[0]!, fetcher: signingFetcher(signer, serviceName, replicas) });
    this.replicas = replicas;
  }

  /** A subgraph that cannot be reached (refused, reset, timed out) is a clear, retryable error. */
  override didEncounterError(
    error: Error,
    fetchRequest: Parameters<RemoteGraphQLDataSource['didEncounterError']>[1],
    fetchResponse?: Parameters<RemoteGraphQLDataSource['didEncounterError']>[2],
  ): void {
    if (!fetchResponse) {
      throw subgraphUnavailable(this.serviceName, error);
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
