/**
 * Group commit for ledger writes (docs/money.md, "Throughput"). Callers submit work items; while
 * one batch runs, later arrivals wait in a queue, and when it finishes they all run together as
 * the next batch: one database transaction, one lock, batched reads and multi-row writes. A lone
 * caller is never delayed (its batch starts at once), and under load the batch grows by itself.
 *
 * `runBatch` must treat every item independently (its outcome is a value, e.g. a refusal, never an
 * exception) and either commit all the items' writes or throw. When it throws (an unexpected
 * database error: a unique-key race with another process, a deadlock, a bug), nothing of the
 * batch was committed and every item is re-run alone with `runAlone`, so one bad item cannot fail
 * its neighbours. At most one batch per queue is in flight.
 */
export class GroupCommit<I, O> {
  private readonly queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly runAlone: (item: I) => Promise<O>,
    private readonly maxBatch = 64,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Callers that submit in the same tick (Promise.all) share the first batch.
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        if (batch.length === 1) {
          const one = batch[0]!;
          await this.runAlone(one.item).then(one.resolve, one.reject);
          continue;
        }
        let outcomes: O[] | null = null;
        try {
          outcomes = await this.runBatch(batch.map((b) => b.item));
        } catch {
          outcomes = null;
        }
        if (outcomes) {
          batch.forEach((b, i) => b.resolve(outcomes[i]!));
        } else {
          for (const b of batch) await this.runAlone(b.item).then(b.resolve, b.reject);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
