/**
 * A background loop with an interruptible sleep: `wake()` cuts a pause short, `stop()` ends it and
 * aborts `signal` (so a pending long poll in a step ends at once).
 */
import type { Logger } from '../../lib/log.js';

export class WorkerLoop {
  private running = false;
  private controller = new AbortController();
  private done: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;

  constructor(
    readonly name: string,
    private readonly step: (loop: WorkerLoop) => Promise<number>,
    /** The service's logger: gets the failures a step did not handle. */
    private readonly log: Logger,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  /** Aborted when the loop is stopped: pass it to calls that may wait (long polls). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Runs `step` until stopped; `step` returns how long to pause before the next round (ms). */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.controller.signal.aborted) this.controller = new AbortController();
    this.done = (async () => {
      while (this.running) {
        let pause: number;
        try {
          pause = await this.step(this);
        } catch (err) {
          // Steps handle their own failures; this is a last resort so that the loop never dies.
          this.log.error({ worker: this.name, err }, 'worker step failed unexpectedly');
          pause = 1000;
        }
        if (this.running && pause > 0) await this.sleep(pause);
      }
    })();
  }

  /** Ends the current pause now (e.g. a new command was written). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.controller.abort();
    this.wake();
    await this.done;
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.wakeUp = () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.wakeUp = null;
        this.woken = false;
        resolve();
      };
      this.timer = setTimeout(() => this.wakeUp?.(), ms);
    });
  }
}

/** Exponential backoff with jitter: min * 2^(attempt-1), capped, plus up to 20% jitter. */
export function backoff(attempt: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + Math.random() * 0.2));
}
