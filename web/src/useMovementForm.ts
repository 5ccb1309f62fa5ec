/**
 * What Send and Pay share: one idempotency key per submission (idempotency.ts), reused when the
 * same submission is retried after a failure with no answer; the API's userErrors by the field
 * they name (["input", "amount"] → "amount"), the others as a form-level message.
 */
import { useMemo, useState } from 'react';
import { submissionKey } from './idempotency.js';
import { fieldOf } from './labels.js';
import type { UserError } from './operations.js';

export interface MovementForm {
  key: () => string;
  /** The form changed: its next submit is a new submission. */
  edited: () => void;
  errors: Record<string, string>;
  formError: string | null;
  /** The API answered with these userErrors (none: success). */
  answered: (userErrors: readonly UserError[], fields: readonly string[]) => void;
  /** No answer (network, 5xx): keep the key for the retry. */
  failed: (message: string) => void;
  setErrors: (e: Record<string, string>) => void;
}

export function useMovementForm(): MovementForm {
  const sk = useMemo(() => submissionKey(), []);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  return {
    key: () => sk.current(),
    edited: () => sk.settled(),
    errors,
    formError,
    setErrors: (e) => {
      setErrors(e);
      setFormError(null);
    },
    answered(userErrors, fields) {
      sk.settled();
      const byField: Record<string, string> = {};
      const rest: string[] = [];
      for (const e of userErrors) {
        const f = fieldOf(e.field);
        if (f && fields.includes(f)) byField[f] = e.message;
        else rest.push(e.message);
      }
      setErrors(byField);
      setFormError(rest.length ? rest.join(' ') : null);
    },
    failed(message) {
      setErrors({});
      setFormError(`${message} Nothing was sent twice: submitting again retries the same request.`);
    },
  };
}
