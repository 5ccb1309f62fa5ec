/** Waiting for a condition that no event announces (a row written after the response, a counter reaching n). */

/**
 * Waits until `cond` holds, checking every `everyMs`; fails naming `label` after `timeoutMs`. The
 * deadline is measured on the monotonic clock (performance.now), which no wall-clock change moves.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, label: string, timeoutMs = 15_000, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Reads until `check` accepts the value (see waitFor); returns that value. */
export async function readUntil<T>(read: () => Promise<T>, check: (v: T) => boolean, label: string, timeoutMs = 15_000): Promise<T> {
  let value!: T;
  await waitFor(async () => check((value = await read())), label, timeoutMs);
  return value;
}
