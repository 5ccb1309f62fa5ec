/**
 * A push-based async iterator for subscription streams. Unlike an async generator, `return()`
 * takes effect at once even while a `next()` is pending, so a client that unsubscribes (or a
 * socket that closes) releases the stream immediately instead of at the next event. Used by the
 * alerts service's subscription endpoint and the gateway's subscription bridge.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private readonly waiters: { resolve(r: IteratorResult<T>): void; reject(err: unknown): void }[] = [];
  private closed = false;
  private failure: { error: unknown } | null = null;

  /** `onReturn` runs once, when the consumer stops listening or the channel ends. */
  constructor(private onReturn?: () => void) {}

  get isClosed(): boolean {
    return this.closed;
  }

  push(value: T): void {
    if (this.closed) return;
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value, done: false });
    else this.queue.push(value);
  }

  /** Ends the stream after the queued values. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup();
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  /** Ends the stream with an error, after the queued values. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.failure = { error };
    this.closed = true;
    this.cleanup();
    const waiter = this.waiters.shift();
    if (waiter) {
      this.failure = null;
      waiter.reject(error);
    }
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.queue.length = 0;
    this.failure = null;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    void error;
    return this.return();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private cleanup(): void {
    const fn = this.onReturn;
    this.onReturn = undefined;
    fn?.();
  }
}
