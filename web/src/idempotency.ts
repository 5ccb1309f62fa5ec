/**
 * One idempotency key per form submission: created when the user submits, reused when the same
 * submission is retried (a network error, a timeout), replaced only once the API has answered
 * (success or a user error) or the user edits the form, which makes it a new submission. The API
 * keeps keys 24 h, so a retry can never move money twice (docs/money.md).
 */
export interface SubmissionKey {
  /** The key for this attempt: the pending one, or a new one. */
  current(): string;
  /** The API answered: the next submit is a new submission. */
  settled(): void;
}

export function submissionKey(make: () => string = () => crypto.randomUUID()): SubmissionKey {
  let pending: string | null = null;
  return {
    current() {
      pending ??= `web-${make()}`;
      return pending;
    },
    settled() {
      pending = null;
    },
  };
}
