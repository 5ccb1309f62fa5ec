/**
 * What the app keeps to resume its alert stream (docs/alerts.md, "Resuming"): the cursor of the
 * last alert it received, passed as `chargeAlertRaised(after:)` each time it subscribes again, so
 * an alert raised while the tab was offline is replayed; and the ids already shown, so a replay
 * that overlaps what was seen toasts nothing twice. Per tab (sessionStorage), cleared at sign-out.
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

export function markAlertSeen(id: string): void {
  const seen = seenAlertIds();
  seen.add(id);
  sessionStorage.setItem(SEEN_KEY, JSON.stringify([...seen].slice(-500)));
}

/** The cursor to resume after: the last alert received (live, replayed or listed). */
export function lastCursor(): string | undefined {
  return sessionStorage.getItem(CURSOR_KEY) ?? undefined;
}

export function keepCursor(cursor: string): void {
  sessionStorage.setItem(CURSOR_KEY, cursor);
}

/** CURSOR_EXPIRED (too long away): start again from the list. */
export function forgetCursor(): void {
  sessionStorage.removeItem(CURSOR_KEY);
}

/** Sign-out or another user: nothing of this stream carries over. */
export function clearAlertResume(): void {
  sessionStorage.removeItem(CURSOR_KEY);
  sessionStorage.removeItem(SEEN_KEY);
}
