/**
 * Fence layer 5 under a flood: refused attempts by unauthenticated callers, bounded before they
 * reach the audit, without losing count of any. Per client address and window (fixed windows
 * aligned to the clock, `windowId = floor(now / windowMs)`, so that every gateway agrees on them):
 *
 * - the first attempt of a kind (same operation hash, coordinates, decision and reason) is
 *   appended at once, as always; identical repeats in the same window are only counted, and
 *   appended as one record with `count` (how many it stands for) when the window closes
 *   (coalescing);
 * - past `perWindow` kinds, further attempts are answered RATE_LIMITED without an append, and
 *   counted into one record per address and window (reason RATE_LIMITED, with the coordinates
 *   they selected).
 *
 * Which attempt is the first of its kind, and how many kinds an address has used, is asked of a
 * `RefusalStore`: this process's memory (`MemoryRefusalStore`, the default: `npm start`, tests),
 * or Redis shared by every gateway (gateway/refusal-store.ts), so that g gateways allow the budget
 * once, not g times, and append one first record of a kind between them, not g. The counts of
 * repeats and of limited attempts are kept by the gateway that saw them, and each gateway appends
 * its own when the window closes: the sum of `count` over the log is the number of attempts, and
 * a gateway that dies loses only its own open window's counts, never another's, never a first
 * record (docs/audit.md#robustness).
 *
 * So one anonymous client costs the log, per window, at most perWindow first records shared by all
 * gateways, plus, per gateway that saw its attempts, at most perWindow + 1 count records (one per
 * kind it counted repeats of, one for its limited attempts): 2·perWindow + 1 with one gateway,
 * perWindow + g·(perWindow + 1) with g; whatever its rate. While a shared store is unreachable, each
 * gateway bounds on its own memory (up to g times the first records), rather than refuse or stall.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import type { DataAccessRecord } from './audit-record.js';
import type { AuditSink } from './audit-sink.js';

/** What a store answers for one attempt: the first of its kind in the window, a repeat, or over the budget. */
export type RefusalClaim = 'first' | 'repeat' | 'over';

/**
 * Who has seen which kinds of refused attempts, per address and window. A kind is `first` once per
 * address and window (for every gateway sharing the store), then `repeat`; a kind that would be
 * the address's perWindow + 1st of the window is `over` (and stays over). Never rejects: a shared
 * store that cannot answer answers from memory.
 */
export interface RefusalStore {
  claim(address: string, kind: string, windowId: number, perWindow: number, windowMs: number): Promise<RefusalClaim>;
}

/** The store in this process's memory: the current and the previous window only, so memory stays bounded. */
export class MemoryRefusalStore implements RefusalStore {
  private readonly windows = new Map<number, Map<string, Set<string>>>();

  claim(address: string, kind: string, windowId: number, perWindow: number): Promise<RefusalClaim> {
    return Promise.resolve(this.claimNow(address, kind, windowId, perWindow));
  }

  claimNow(address: string, kind: string, windowId: number, perWindow: number): RefusalClaim {
    for (const id of this.windows.keys()) if (id < windowId - 1) this.windows.delete(id);
    let addresses = this.windows.get(windowId);
    if (!addresses) this.windows.set(windowId, (addresses = new Map()));
    let kinds = addresses.get(address);
    if (!kinds) addresses.set(address, (kinds = new Set()));
    if (kinds.has(kind)) return 'repeat';
    if (kinds.size >= perWindow) return 'over';
    kinds.add(kind);
    return 'first';
  }
}

export interface RefusalGuardOptions {
  /** Distinct refused kinds one address may have appended per window (default 20). */
  perWindow?: number;
  /** The window (default 10 s). */
  windowMs?: number;
  /** Where first attempts are claimed; default: this process's memory. */
  store?: RefusalStore;
}

export type Admission = 'recorded' | 'coalesced' | 'limited';

interface Pending {
  record: DataAccessRecord;
  count: number;
}

interface AddressWindow {
  id: number;
  /** The kinds this gateway saw (first here or elsewhere), with the repeats it counted. */
  kinds: Map<string, Pending>;
  overflow: Pending | null;
  /** Claims not yet answered: the window's counts are appended only after them, so none is lost. */
  claims: Set<Promise<unknown>>;
}

const MAX_OVERFLOW_COORDINATES = 500;

/** One kind of refused attempt, as a fixed-size digest (a store's key or field, whatever the coordinates). */
export function refusalKind(record: DataAccessRecord): string {
  return createHash('sha256')
    .update(JSON.stringify([record.operationHash, record.decision, record.reason ?? null, record.coordinates]))
    .digest('hex')
    .slice(0, 32);
}

export class RefusalGuard {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly store: RefusalStore;
  /** Answers when the store rejects anyway (it should not): bounding never fails an admission. */
  private readonly memory = new MemoryRefusalStore();
  private readonly addresses = new Map<string, AddressWindow>();
  /** Windows closed by a later attempt, still appending: stop() waits for them. */
  private readonly closing = new Set<Promise<unknown>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditSink,
    private readonly log: Logger,
    opts: RefusalGuardOptions = {},
  ) {
    this.perWindow = opts.perWindow ?? 20;
    this.windowMs = opts.windowMs ?? 10_000;
    this.store = opts.store ?? this.memory;
    this.timer = setInterval(() => void this.flush(false), Math.min(this.windowMs, 1_000));
    this.timer.unref();
  }

  /**
   * One refused attempt by an unauthenticated caller from `address`: appended ('recorded', once
   * committed), counted into its window's record ('coalesced'), or over the budget ('limited').
   */
  async admit(address: string, record: DataAccessRecord, now = Date.now()): Promise<Admission> {
    const id = Math.floor(now / this.windowMs);
    let w = this.addresses.get(address);
    if (w && w.id !== id) {
      this.addresses.delete(address);
      const closed = this.close(w).finally(() => this.closing.delete(closed));
      this.closing.add(closed);
      w = undefined;
    }
    if (!w) {
      w = { id, kinds: new Map(), overflow: null, claims: new Set() };
      this.addresses.set(address, w);
    }
    const kind = refusalKind(record);
    // What this gateway already knows needs no store: a kind it saw is not the first (it was
    // claimed), and with perWindow kinds seen here the address's budget is spent everywhere.
    let seen = w.kinds.get(kind);
    if (seen) {
      seen.count += 1;
      return 'coalesced';
    }
    let claim: RefusalClaim = 'over';
    if (w.kinds.size < this.perWindow) {
      const asked = this.store.claim(address, kind, id, this.perWindow, this.windowMs).catch(() => this.memory.claimNow(address, kind, id, this.perWindow));
      w.claims.add(asked);
      claim = await asked;
      w.claims.delete(asked);
    }
    // Another attempt of this kind may have been answered while this one was asked.
    seen = w.kinds.get(kind);
    // Concurrent claims answered partly by Redis and partly by memory (an outage beginning or
    // ending) could give this gateway more kinds than the budget: it keeps perWindow at most.
    if (!seen && claim !== 'over' && w.kinds.size >= this.perWindow) claim = 'over';
    if (claim === 'first') {
      if (!seen) w.kinds.set(kind, { record, count: 0 });
      await this.audit(record);
      return 'recorded';
    }
    if (claim === 'repeat') {
      if (seen) seen.count += 1;
      else w.kinds.set(kind, { record, count: 1 });
      return 'coalesced';
    }
    if (!w.overflow) w.overflow = { record: { ...record, operationName: null, reason: 'RATE_LIMITED' }, count: 0 };
    const o = w.overflow.record;
    if (o.coordinates.length < MAX_OVERFLOW_COORDINATES)
      o.coordinates = [...new Set([...o.coordinates, ...record.coordinates])].sort().slice(0, MAX_OVERFLOW_COORDINATES);
    w.overflow.count += 1;
    return 'limited';
  }

  /**
   * Appends the counts this gateway saw in a closed window: one record per kind it counted repeats
   * of, one for the overflow; after the window's unanswered claims, whose attempts count in it.
   */
  private async close(w: AddressWindow): Promise<unknown> {
    if (w.claims.size) await Promise.all(w.claims);
    const records = [...w.kinds.values(), ...(w.overflow ? [w.overflow] : [])].filter((p) => p.count > 0);
    w.kinds.clear();
    w.overflow = null;
    return Promise.all(
      records.map((p) =>
        this.audit({ ...p.record, at: new Date().toISOString(), count: p.count }).catch((err: unknown) =>
          this.log.error({ err: String(err), count: p.count }, '[fence] could not append the count of coalesced refused attempts'),
        ),
      ),
    );
  }

  /** Closes every window that has ended (all of them with `all`), appending their counts. */
  flush(all: boolean, now = Date.now()): Promise<unknown> {
    const current = Math.floor(now / this.windowMs);
    const closing: Promise<unknown>[] = [];
    for (const [address, w] of this.addresses) {
      if (all || w.id !== current) {
        this.addresses.delete(address);
        closing.push(this.close(w));
      }
    }
    return Promise.all(closing);
  }

  /** Stops the timer and appends what the open windows counted (before the audit's service goes). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.flush(true), ...this.closing]);
  }
}
