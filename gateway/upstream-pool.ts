/**
 * The gateway's upstream graphql-ws connections: one client (one socket) per process of a subgraph
 * that serves subscriptions, shared by every subscription this gateway bridges to that process. A
 * thousand subscribers cost one socket per alerts process, not a thousand.
 *
 * The socket itself is the gateway's: its connection_init is signed for the subgraph with the
 * gateway's key and names no caller (lib/transport/signing.ts signConnectionInit). Who is asking
 * is proven per subscription, by the grant the bridge signs into each subscribe message.
 *
 * The clients do not retry on their own (retryAttempts 0): when a socket drops, every
 * subscription on it is told, and the bridge re-subscribes each with a fresh grant and its own
 * resume position (a client-side retry would resend the old grant, whose nonce is spent). The next
 * subscribe on a dropped client opens a new socket (lazy).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { SubgraphName } from '../lib/config.js';
import type { ServiceKeys } from '../lib/transport/keys.js';
import { signConnectionInit } from '../lib/transport/signing.js';

/** Upstream keep-alive ping: a half-open connection is noticed within about this long. */
export const UPSTREAM_KEEPALIVE_MS = 10_000;
/** How long an upstream socket stays open after its last subscription ended (saves reconnecting for the next one). */
export const UPSTREAM_IDLE_CLOSE_MS = 5_000;

/** One upstream process's shared client, and what the bridge needs to know about its socket. */
export interface Upstream {
  readonly client: Client;
  /** Whether its socket is open and acknowledged. */
  readonly open: boolean;
  /** How many times its socket was acknowledged so far (a subscription issued before a later one got through). */
  readonly connects: number;
}

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http(s?):/, 'ws$1:');
}

export class UpstreamPool {
  private readonly upstreams = new Map<string, { client: Client; open: boolean; connects: number }>();

  constructor(private readonly keys: ServiceKeys) {}

  /** The shared client of the process at `url` (an http(s) URL of `service`'s /graphql). */
  of(service: SubgraphName, url: string): Upstream {
    const key = `${service} ${url}`;
    const existing = this.upstreams.get(key);
    if (existing) return existing;
    const entry = { client: null as unknown as Client, open: false, connects: 0 };
    entry.client = createClient({
      url: wsUrl(url),
      webSocketImpl: WebSocket,
      lazy: true,
      lazyCloseTimeout: UPSTREAM_IDLE_CLOSE_MS,
      keepAlive: UPSTREAM_KEEPALIVE_MS,
      retryAttempts: 0,
      // Evaluated on every (re)connection: a fresh timestamp and nonce.
      connectionParams: () => signConnectionInit(this.keys, service),
      on: {
        connected: () => {
          entry.open = true;
          entry.connects += 1;
        },
        closed: () => {
          entry.open = false;
        },
      },
    });
    this.upstreams.set(key, entry);
    return entry;
  }

  /** Upstream sockets open right now. */
  get sockets(): number {
    let n = 0;
    for (const u of this.upstreams.values()) if (u.open) n += 1;
    return n;
  }

  async closeAll(): Promise<void> {
    const all = [...this.upstreams.values()];
    this.upstreams.clear();
    await Promise.all(all.map((u) => u.client.dispose()));
  }
}
