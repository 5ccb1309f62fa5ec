/**
 * Hook for resumable alerts (issue #15: `chargeAlertRaised(after:)` and an alert `cursor`). The
 * app records the cursor of each alert it shows here; once the API takes `after`, the
 * subscription passes lastCursor() so that a reconnect replays what was raised while offline,
 * once. Today the API has no cursor: these keep only the ids already shown (no toast twice).
 */
const SEEN_KEY = 'paygraph.alerts.seen';
const CURSOR_KEY = 'paygraph.alerts.cursor';

export function seenAlertIds(): Set<string> {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(SEEN_KEY) ?? '[]') as string[]);
  } catch {
    return new Set();
  }
}

export function markAlertSeen(id: string, cursor?: string): void {
  const seen = seenAlertIds();
  seen.add(id);
  sessionStorage.setItem(SEEN_KEY, JSON.stringify([...seen].slice(-500)));
  if (cursor) sessionStorage.setItem(CURSOR_KEY, cursor);
}

/** The cursor to resume after (undefined until the API has alert cursors). */
export function lastCursor(): string | undefined {
  return sessionStorage.getItem(CURSOR_KEY) ?? undefined;
}
