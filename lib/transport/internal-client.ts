/**
 * The client for signed service-to-service calls outside the graph (POST /internal/<route>): the
 * alerts worker reading the payments event feed, the alerts freezer, the gateway appending audit
 * records. Each call is signed with the CALLING service's own private key (keys.ts, signing.ts)
 * for the peer it goes to (the target is covered: a call signed for one service is refused by
 * every other), goes over the keep-alive client (http-client.ts) and fails over across the peer's
 * processes (replicas.ts withFailover). The peer's route accepts it only from the services it
 * lists (subgraphs/definition.ts InternalEndpoint.callers). Inside a trace (lib/tracing.ts) each
 * attempt is a client span whose `traceparent` goes with the request (not signed: see
 * signing.ts); calls outside any trace (the consumer's long polls) carry none.
 */
import { ANONYMOUS } from '../auth.js';
import type { SubgraphName } from '../config.js';
import { httpRequest } from './http-client.js';
import type { Signer } from './keys.js';
import { withFailover } from './replicas.js';
import { encodeCaller, REQUEST_ID_HEADER, signMessage } from './signing.js';
import { failSpan, injectTraceContext, inTrace, SpanKind, tracer } from '../tracing.js';

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
 * POST a JSON body to `<baseUrl>/internal/<route>` of the `target` service, signed by `signer`
 * (the calling service). `baseUrl` may list the peer's processes, comma-separated, the preferred
 * one first (a cluster lists each process's "home" peer first): a refused connection moves on to
 * the next.
 */
export async function callInternal<T>(
  signer: Signer,
  target: SubgraphName,
  baseUrl: string,
  route: string,
  body: unknown,
  opts: CallInternalOptions = {},
): Promise<T> {
  const urls = internalBaseUrls(baseUrl);
  if (urls.length === 0) throw new Error(`internal call ${route}: no URL for the peer`);
  const text = JSON.stringify(body);
  const res = await withFailover(urls, async (url) => {
    const endpoint = `${url}/internal/${route}`;
    // Signed afresh for each attempt: a new time and nonce.
    const signature = await signMessage(signer, { method: 'POST', path: new URL(endpoint).pathname, target, caller: encodeCaller(ANONYMOUS), body: text });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      ...signature,
      ...(opts.requestId ? { [REQUEST_ID_HEADER]: opts.requestId } : {}),
    };
    const send = () => httpRequest(endpoint, { headers, body: text, timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal });
    if (!inTrace()) return send();
    return tracer(signer.service).startActiveSpan(
      `POST /internal/${route}`,
      { kind: SpanKind.CLIENT, attributes: { 'paygraph.peer': target, 'url.full': endpoint } },
      async (span) => {
        injectTraceContext(headers);
        try {
          const res = await send();
          span.setAttribute('http.response.status_code', res.status);
          return res;
        } catch (err) {
          failSpan(span, err);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  });
  const out = res.body.toString('utf8');
  if (res.status !== 200) throw new InternalCallError(res.status, `internal call ${route} failed with ${res.status}: ${out.slice(0, 200)}`);
  return JSON.parse(out) as T;
}
