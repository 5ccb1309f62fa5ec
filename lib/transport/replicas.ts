/**
 * A service's processes and the one fail-over rule for calling them. A service may run as several
 * processes (a comma-separated URL list, lib/config.ts parseUrlList); callers take them in turn.
 * A call that finds its process refusing the connection (down, restarting) moves on to the next:
 * the request never reached it, so nothing can have run twice. Nothing else is retried (a reset
 * or a timeout may have executed a mutation).
 */
import { parseUrlList } from '../config.js';

/** True when a request failed because nothing accepted the connection: it was never sent. */
export function isConnectionRefused(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // node:http errors carry the code themselves; fetch (undici) errors carry it in `cause`.
  return (err as { code?: unknown }).code === 'ECONNREFUSED' || (err.cause as { code?: unknown } | undefined)?.code === 'ECONNREFUSED';
}

export class Replicas {
  readonly urls: readonly string[];
  private turn = 0;

  /** `urls`: one URL, a comma-separated list, or a list. */
  constructor(urls: string | readonly string[]) {
    this.urls = typeof urls === 'string' ? parseUrlList(urls) : [...urls];
    if (this.urls.length === 0) throw new Error('a service needs at least one URL');
  }

  /** The next URL in turn. */
  next(): string {
    const url = this.urls[this.turn % this.urls.length]!;
    this.turn = (this.turn + 1) % this.urls.length;
    return url;
  }

  /** Every URL, starting with `first`, then the others in list order (fail-over order). */
  startingAt(first: string): string[] {
    const i = this.urls.indexOf(first);
    if (i < 0) return [first, ...this.urls];
    return [...this.urls.slice(i), ...this.urls.slice(0, i)];
  }
}

/**
 * Runs `attempt` against each URL in order until one accepts the connection: the fail-over loop,
 * the only one in paygraph. The last refusal, or any other error, is thrown as it is.
 */
export async function withFailover<T>(urls: readonly string[], attempt: (url: string) => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt(urls[i]!);
    } catch (err) {
      if (i + 1 < urls.length && isConnectionRefused(err)) continue;
      throw err;
    }
  }
}
