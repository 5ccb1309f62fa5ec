/**
 * Replay protection for signed requests (signing.ts SignatureVerifier): every nonce is accepted
 * once. A signature is accepted while its `created` time is within the allowed skew of the clock,
 * so a nonce must be remembered for twice the skew after it was first seen (the whole window in
 * which its signature could still be accepted). Nonces are kept in arrival order (a Map iterates
 * in insertion order) and expired from the front, O(1) amortised per request (a full scan per
 * request grew with the request rate times the window).
 *
 * With several processes of one service (REDIS_URL), each nonce is also claimed in Redis
 * (lib/redis.ts connectNonceStore), so a request accepted by one process is a replay at the others.
 */

/** A nonce store shared by every process of a service (lib/redis.ts connectNonceStore). */
export interface SharedNonces {
  claim(scope: string, nonce: string, ttlMs: number): Promise<boolean>;
}

export interface SharedReplayCheck {
  nonces: SharedNonces;
  /** The service's name: its processes share it, other services' nonces live apart. */
  scope: string;
  /** Told when the shared store is unreachable (the local check still holds). */
  onUnavailable?: (err: unknown) => void;
}

export class ReplayGuard {
  /** nonce -> when it was first seen (this process's clock). */
  private readonly seen = new Map<string, number>();

  /** `rememberMs`: how long a nonce stays refused after it was first seen. */
  constructor(
    private readonly rememberMs: number,
    private readonly shared?: SharedReplayCheck,
  ) {}

  /**
   * True the first time `nonce` is seen (and remembers it), false for a replay. If the shared
   * store is unreachable the request is judged on this process's own memory: a Redis outage must
   * not stop the payments zone, and the local check still holds.
   */
  async claim(nonce: string, now = Date.now()): Promise<boolean> {
    this.prune(now);
    if (this.seen.has(nonce)) return false;
    this.seen.set(nonce, now);
    if (!this.shared) return true;
    try {
      return await this.shared.nonces.claim(this.shared.scope, nonce, this.rememberMs);
    } catch (err) {
      this.shared.onUnavailable?.(err);
      return true;
    }
  }

  private prune(now: number): void {
    for (const [nonce, firstSeen] of this.seen) {
      // Arrival order: the first entry still fresh ends the sweep. (A clock stepping backwards
      // only keeps entries longer.)
      if (now - firstSeen <= this.rememberMs) return;
      this.seen.delete(nonce);
    }
  }
}
