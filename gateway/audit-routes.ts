/**
 * The public transparency-log endpoints, beside /graphql on the gateway's origin, no token needed
 * (docs/audit.md): the latest signed checkpoint, the verifier key, RFC 6962 inclusion and
 * consistency proofs, and the leaves. The gateway holds neither the log nor its checkpoint key:
 * each request is relayed to the accounts service over the signed internal transport
 * (subgraphs/accounts/audit.ts auditReadRoutes), and what it answers (signed by the audit
 * service's own key) is passed on as is. Leaves name no user, amount, balance, mask or account.
 *
 * Parameters are non-negative decimal integers; a bad one is answered 400
 * `{ "error": "...", "parameter": "<name>" }`, as is one the log refuses (beyond the tree, …).
 *
 * Public and unauthenticated, so bounded per client address: each request spends one point of the
 * address's budget (PAYGRAPH_AUDIT_READS_PER_MINUTE, default 3,000: limits.ts, shared by the
 * gateways through Redis like the mutation limit), and /audit/entries one more per 100 entries;
 * over it, 429 with Retry-After (the witness waits it out). A bank's witness polling every minute
 * spends a few points; re-hashing a log of a million entries from the start spends about 11,000.
 */
import type http from 'node:http';
import type { Logger } from '../lib/log.js';
import { sendJson } from '../lib/http.js';
import { callInternal } from '../lib/transport/internal-client.js';
import type { Signer } from '../lib/transport/keys.js';
import type { RateLimiter } from './rate-limit.js';

/** /audit/entries costs one point per this many entries, beside the request's own point. */
const ENTRIES_PER_POINT = 100;

export const AUDIT_PATH_PREFIX = '/audit/';

interface Route {
  internal: string;
  params: readonly string[];
  /** Reply with the internal answer's text field as text/plain (checkpoint, key), else the JSON. */
  text?: 'checkpoint' | 'key';
}

const ROUTES: Readonly<Record<string, Route>> = {
  '/audit/checkpoint': { internal: 'auditCheckpoint', params: [], text: 'checkpoint' },
  '/audit/key': { internal: 'auditKey', params: [], text: 'key' },
  '/audit/proof/inclusion': { internal: 'auditInclusion', params: ['index', 'size'] },
  '/audit/proof/consistency': { internal: 'auditConsistency', params: ['from', 'to'] },
  '/audit/entries': { internal: 'auditEntries', params: ['start', 'end'] },
};

class BadParameter extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}

function parameters(search: URLSearchParams, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of names) {
    const values = search.getAll(name);
    if (values.length !== 1) throw new BadParameter(name, values.length ? `give ${name} once` : `${name} is required`);
    const v = values[0]!;
    if (!/^(0|[1-9][0-9]{0,15})$/.test(v) || !Number.isSafeInteger(Number(v))) throw new BadParameter(name, `${name} must be a non-negative decimal integer`);
    out[name] = Number(v);
  }
  return out;
}

export interface AuditRoutesOptions {
  accountsUrls: string;
  keys: Signer;
  logger: Logger;
  /** The per-address read budget (createRateLimiter, counter `audit-reads`); unset: unbounded (tests of other concerns). */
  limiter?: RateLimiter;
}

/** Handles a request under /audit/; answers 404 for an unknown path. */
export function auditRoutes(opts: AuditRoutesOptions) {
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const route = Object.hasOwn(ROUTES, url.pathname) ? ROUTES[url.pathname] : undefined;
    if (!route) return sendJson(res, 404, { error: `not found; the audit log serves ${Object.keys(ROUTES).join(', ')}` });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `${url.pathname} takes GET` }, { allow: 'GET, HEAD' });
    let params: Record<string, number>;
    try {
      params = parameters(url.searchParams, route.params);
    } catch (err) {
      if (err instanceof BadParameter) return sendJson(res, 400, { error: err.message, parameter: err.parameter });
      throw err;
    }
    if (opts.limiter) {
      // Charged before the relay, for what was asked (a refused range costs what it would have).
      const entries = route.internal === 'auditEntries' ? Math.max(0, params.end! - params.start!) : 0;
      const points = 1 + Math.ceil(Math.min(entries, 1_000_000) / ENTRIES_PER_POINT);
      const retryAfter = await opts.limiter.take(req.socket.remoteAddress ?? 'unknown', points);
      if (retryAfter !== null)
        return sendJson(
          res,
          429,
          { error: `too many audit log reads from this address; retry in ${retryAfter} s`, retryAfterSeconds: retryAfter },
          { 'retry-after': String(retryAfter) },
        );
    }
    let answer: Record<string, unknown>;
    try {
      answer = await callInternal<Record<string, unknown>>(opts.keys, 'accounts', opts.accountsUrls, route.internal, params, { timeoutMs: 5_000 });
    } catch (err) {
      opts.logger.error({ err: String(err), path: url.pathname }, 'audit log unavailable');
      return sendJson(res, 503, { error: 'the audit log is unavailable; try again' }, { 'retry-after': '1' });
    }
    const refused = answer.error as { parameter?: string; message?: string } | undefined;
    if (refused) return sendJson(res, 400, { error: refused.message ?? 'bad parameter', parameter: refused.parameter ?? null });
    if (route.text) {
      const text = String(answer[route.text] ?? '');
      const body = route.text === 'key' ? `${text}\n` : text;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    sendJson(res, 200, answer);
  };
}
