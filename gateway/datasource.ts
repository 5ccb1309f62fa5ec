/**
 * The gateway's subgraph data source: forwards the caller and request id, and signs the exact
 * body bytes it sends (fence layer 4) by wrapping the fetcher.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
type Fetcher = RemoteGraphQLDataSource['fetcher'];
import { encodeCaller, signRaw, CALLER_HEADER, REQUEST_ID_HEADER } from '../lib/signing.js';
import type { GatewayContext } from './context.js';

/** Subgraph fetch timeout. */
export const SUBGRAPH_TIMEOUT_MS = 10_000;

export function signingFetcher(key: Buffer): Fetcher {
  return (async (url: string, init?: { headers?: Record<string, string>; body?: string; method?: string }) => {
    const headers = { ...(init?.headers ?? {}) };
    const body = init?.body ?? '';
    Object.assign(headers, signRaw(key, headers[CALLER_HEADER] ?? '', body));
    return fetch(url, { method: init?.method ?? 'POST', headers, body, signal: AbortSignal.timeout(SUBGRAPH_TIMEOUT_MS) });
  }) as unknown as Fetcher;
}

export class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(
    url: string,
    key: Buffer,
    readonly serviceName: string = 'subgraph',
  ) {
    super({ url, fetcher: signingFetcher(key) });
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
    const headers = request.http?.headers;
    if (!headers) return;
    // Health checks and internal requests have no caller: they are anonymous.
    const caller = 'caller' in context && context.caller ? context.caller : { userId: null, purpose: null, client: null };
    headers.set(CALLER_HEADER, encodeCaller(caller));
    if ('requestId' in context && typeof context.requestId === 'string') headers.set(REQUEST_ID_HEADER, context.requestId);
  }
}
