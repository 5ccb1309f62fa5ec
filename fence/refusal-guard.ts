/**
 * Fence layer 5 under a flood: refused attempts by unauthenticated callers, bounded before they
 * reach the audit, without losing count of any. Per client address and window (which opens at
 * the address's first refused attempt and lasts `windowMs`):
 *
 * - the first attempt of a kind (same operation hash, coordinates and decision) is appended at
 *   once, as always; identical repeats in the same window are only counted, and appended as one
 *   record with `count` (how many it stands for) when the window closes (coalescing);
 * - past `perWindow` kinds, further attempts are answered RATE_LIMITED without an append, and
 *   counted into one record per address and window (reason RATE_LIMITED, with the coordinates
 *   they selected).
 *
 * So one anonymous client costs the log at most 2·perWindow + 1 records a window, whatever its
 * rate, and the log still says how many attempts there were. The counts are held by this gateway
 * process (docs/audit.md: a crash loses at most one window's repeat counts, never a first record).
 */
import type { Logger } from '../lib/log.js';
import type { DataAccessRecord } from './audit-record.js';
import type { AuditSink } from './audit-sink.js';

export interface RefusalGuardOptions {
  /** Distinct refused kinds one address may have appended per window (default 20). */
  perWindow?: number;
  /** The window (default 10 s). */
  windowMs?: number;
}

export type Admission = 'recorded' | 'coalesced' | 'limited';

interface Pending {
  record: DataAccessRecord;
  count: number;
}

interface AddressWindow {
  start: number;
  kinds: Map<string, Pending>;
  overflow: Pending | null;
}

const MAX_OVERFLOW_COORDINATES = 500;

export class RefusalGuard {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly addresses = new Map<string, AddressWindow>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditSink,
    private readonly log: Logger,
    opts: RefusalGuardOptions = {},
  ) {
    this.perWindow = opts.perWindow ?? 20;
    this.windowMs = opts.windowMs ?? 10_000;
    this.timer = setInterval(() => void this.flush(false), Math.min(this.windowMs, 1_000));
    this.timer.unref();
  }

  /**
   * One refused attempt by an unauthenticated caller from `address`: appended ('recorded', once
   * committed), counted into its window's record ('coalesced'), or over the budget ('limited').
   */
  async admit(address: string, record: DataAccessRecord, now = Date.now()): Promise<Admission> {
    let w = this.addresses.get(address);
    if (w && now - w.start >= this.windowMs) {
      void this.close(w);
      w = undefined;
    }
    if (!w) {
      w = { start: now, kinds: new Map(), overflow: null };
      this.addresses.set(address, w);
    }
    const kind = `${record.operationHash} ${record.decision} ${record.coordinates.join(',')}`;
    const seen = w.kinds.get(kind);
    if (seen) {
      seen.count += 1;
      return 'coalesced';
    }
    if (w.kinds.size >= this.perWindow) {
      if (!w.overflow) w.overflow = { record: { ...record, operationName: null, reason: 'RATE_LIMITED' }, count: 0 };
      const o = w.overflow.record;
      if (o.coordinates.length < MAX_OVERFLOW_COORDINATES)
        o.coordinates = [...new Set([...o.coordinates, ...record.coordinates])].sort().slice(0, MAX_OVERFLOW_COORDINATES);
      w.overflow.count += 1;
      return 'limited';
    }
    w.kinds.set(kind, { record, count: 0 });
    await this.audit(record);
    return 'recorded';
  }

  /** Appends the counts of a closed window: one record per coalesced kind, one for the overflow. */
  private close(w: AddressWindow): Promise<unknown> {
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
    const closing: Promise<unknown>[] = [];
    for (const [address, w] of this.addresses) {
      if (all || now - w.start >= this.windowMs) {
        closing.push(this.close(w));
        this.addresses.delete(address);
      }
    }
    return Promise.all(closing);
  }

  /** Stops the timer and appends what the open windows counted (before the audit's service goes). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }
}
