/**
 * The server side of HTTP for every service: a minimal Apollo Server integration for node:http,
 * body reading with a limit, JSON answers, listen and close. We need the raw request bytes (subgraphs
 * verify a signature over a digest of the exact body) and the http.Server itself (the gateway attaches graphql-ws
 * to it), which Apollo's standalone server does not give us.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import { HttpError } from './errors.js';

export const MAX_BODY_BYTES = 1_000_000;

/**
 * The whole request body (HTTP 413 past `limit`). Plain 'data'/'end' listeners: an async iterator
 * over the stream costs a promise and several closures per chunk on every request.
 */
export function readBody(req: http.IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Stop reading; the rest of the body stays on the wire (sendGraphQLError closes the connection).
        req.pause();
        reject(new HttpError(413, `request body larger than ${limit} bytes`, 'PAYLOAD_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      if (!req.complete) reject(new HttpError(400, 'request body incomplete: the connection closed'));
    };
    function cleanup(): void {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendGraphQLError(res: http.ServerResponse, err: HttpError): void {
  // After a 413 the rest of the body is still on the wire: close the connection so that no client
  // reuses a socket whose request was abandoned half-read.
  sendJson(res, err.status, { errors: [{ message: err.message, extensions: { code: err.code } }] }, err.status === 413 ? { connection: 'close' } : {});
}

export function headerRecord(req: http.IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Hand one HTTP request to Apollo Server. `body` is the raw bytes already read. */
export async function executeApollo<TContext extends BaseContext>(
  server: ApolloServer<TContext>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  context: () => Promise<TContext>,
  /** Inspects the parsed body before Apollo sees it; throw HttpError to refuse the request. */
  inspect?: (parsed: unknown, search: string) => void,
): Promise<void> {
  const headers = new HeaderMap();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const url = new URL(req.url ?? '/', 'http://localhost');
  let parsed: unknown = undefined;
  if (req.method === 'POST') {
    const type = headers.get('content-type') ?? '';
    if (body.length > 0 && type.includes('json')) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return sendGraphQLError(res, new HttpError(400, 'request body is not valid JSON'));
      }
    } else {
      parsed = body.toString('utf8');
    }
  }
  if (inspect) inspect(parsed, url.search);
  const result = await server.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body: parsed },
    context,
  });
  for (const [k, v] of result.headers) res.setHeader(k, v);
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) res.write(chunk);
  res.end();
}

export async function listen(server: http.Server, port: number, host = '127.0.0.1'): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return `http://${host}:${addr.port}`;
}

export async function close(server: http.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    // A keep-alive client that keeps polling (e.g. the alerts worker reading the payments event
    // feed) would otherwise hold the closing server open forever: answer its next request with
    // `Connection: close`.
    server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.shouldKeepAlive = false;
    });
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
