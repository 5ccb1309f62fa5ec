/**
 * The bench's measuring primitives: closed loops, percentiles, and legs run in alternating rounds
 * (so a shared machine's drift hits every side of a ratio alike).
 */

export interface LegStats {
  p50: number;
  p95: number;
  p99: number;
  rps: number;
  requests: number;
  errors: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function stats(latencies: number[], seconds: number, errors: number): LegStats {
  const s = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), rps: latencies.length / seconds, requests: latencies.length, errors };
}

export interface LoopResult {
  latencies: number[];
  errors: number;
  /** Measured wall time (s): a loop ends after its last call returns, a little past its bound. */
  seconds: number;
}

/** A closed loop of `concurrency` workers calling `fn` for `seconds`; latencies in ms (hrtime). */
export async function loop(fn: () => Promise<void>, seconds: number, concurrency: number): Promise<LoopResult> {
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = process.hrtime.bigint();
        try {
          await fn();
          latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return { latencies, errors, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** One side of a multi-leg comparison: runs for about `seconds` and reports what it did. */
export type Leg = (seconds: number) => Promise<LoopResult>;

/**
 * Runs every leg in `rounds` rounds of `seconds / rounds` each, rotating which goes first, after a
 * warm-up of each; returns each leg's stats over all its rounds (rate over its measured time).
 */
export async function alternate(legs: Record<string, Leg>, seconds: number, warmup: number, rounds = 4): Promise<Record<string, LegStats>> {
  const names = Object.keys(legs);
  for (const n of names) await legs[n]!(warmup);
  const acc = Object.fromEntries(names.map((n) => [n, { latencies: [] as number[], errors: 0, seconds: 0 }]));
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    for (const n of order) {
      const x = await legs[n]!(seconds / rounds);
      const a = acc[n]!;
      for (const l of x.latencies) a.latencies.push(l);
      a.errors += x.errors;
      a.seconds += x.seconds;
    }
  }
  return Object.fromEntries(names.map((n) => [n, stats(acc[n]!.latencies, acc[n]!.seconds, acc[n]!.errors)]));
}
