/**
 * Clocks for tests whose outcome depends on the calendar (the daily transfer limit counts per UTC
 * day): without them, a run crossing midnight UTC would see the limit reset half-way.
 */
import { vi } from 'vitest';

/**
 * A clock for the movements (createPaymentsServices' clock): noon UTC of `day`, one millisecond
 * later at each reading, so that every movement of a test is on that day, in order.
 */
export function noonClock(day = '2026-12-01'): () => Date {
  let t = Date.parse(`${day}T12:00:00.000Z`);
  return () => new Date(t++);
}

/**
 * Runs `fn` with Date stopped at the current instant (vi.setSystemTime without fake timers: only
 * Date is mocked, timers run as usual), for code in this process that reads the clock itself
 * (through the gateway). Everything `fn` does happens on one UTC day, whatever the hour; the clock
 * moves on, by the time `fn` took, when it returns.
 */
export async function onOneDay<T>(fn: () => Promise<T>): Promise<T> {
  vi.setSystemTime(new Date());
  try {
    return await fn();
  } finally {
    vi.useRealTimers();
  }
}

/**
 * Runs `fn` with Date stopped (as onOneDay), so that every refused attempt it makes falls in one
 * window of the refusal guard (fixed windows aligned to the clock: fence/refusal-guard.ts) rather
 * than straddle a window's end by chance; the windows close as usual once it returns.
 */
export const inOneWindow = onOneDay;
