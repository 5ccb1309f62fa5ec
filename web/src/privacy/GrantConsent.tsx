/**
 * Granting consent to one institution: its disclosure text first (`consentDisclosure`), then what
 * to share and for how long, then "I agree". The grant names the disclosure version that was
 * shown, and carries one idempotency key per submission (a retry grants once).
 */
import { useMutation, useQuery } from '@apollo/client/react';
import { useMemo, useState, type FormEvent } from 'react';
import { ErrorNote } from '../ErrorNote.js';
import { Field } from '../Field.js';
import { fieldOf } from '../labels.js';
import { submissionKey } from '../idempotency.js';
import { CONSENT_DISCLOSURE, GRANT_CONSENT, ME, MY_CONSENTS } from '../operations.js';
import { SCOPE_WORDS } from './access.js';

const ALL_SCOPES = ['ACCOUNT_DETAILS', 'BALANCES', 'TRANSACTIONS', 'MONEY_MOVEMENT'];

export function GrantConsent({ institutionId, onDone }: { institutionId: string; onDone: () => void }) {
  const { data, error, loading } = useQuery(CONSENT_DISCLOSURE, { variables: { institutionId }, fetchPolicy: 'network-only' });
  const [scopes, setScopes] = useState<string[]>(ALL_SCOPES);
  const [days, setDays] = useState('90');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const key = useMemo(() => submissionKey(), []);
  const [grant, granting] = useMutation(GRANT_CONSENT, { refetchQueries: [MY_CONSENTS, ME], awaitRefetchQueries: true });
  const d = data?.consentDisclosure;
  if (error) return <ErrorNote error={error} />;
  if (loading || !d) return <p aria-busy="true">Loading the disclosure…</p>;
  const edited = () => {
    key.settled();
    setErrors({});
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const n = Number(days);
    if (!/^\d+$/.test(days) || n < 1 || n > d.maxDurationDays) return setErrors({ durationDays: `From 1 to ${d.maxDurationDays} days.` });
    if (scopes.length === 0) return setErrors({ scopes: 'Choose at least one.' });
    try {
      const res = await grant({
        variables: { input: { institutionId, scopes, durationDays: n, disclosureVersion: d.version, idempotencyKey: key.current() } },
      });
      key.settled();
      const userErrors = res.data?.grantConsent.userErrors ?? [];
      if (userErrors.length === 0) return onDone();
      const byField: Record<string, string> = {};
      for (const u of userErrors) byField[fieldOf(u.field) ?? 'form'] = u.message;
      setErrors(byField);
    } catch (err) {
      setErrors({ form: `${err instanceof Error ? err.message : String(err)} Submitting again retries the same grant.` });
    }
  };
  const id = `grant-${institutionId}`;
  return (
    <form className="grant" onSubmit={(e) => void submit(e)} aria-label={`Grant access to ${d.institution.name}`}>
      <h3>What you agree to</h3>
      <blockquote className="disclosure" data-testid="disclosure">
        {d.text}
      </blockquote>
      <p className="muted small">Disclosure version {d.version}</p>
      <fieldset aria-describedby={errors.scopes ? `${id}-scopes-error` : undefined}>
        <legend>Share with paygraph</legend>
        {ALL_SCOPES.map((s) => (
          <label key={s} className="check">
            <input
              type="checkbox"
              checked={scopes.includes(s)}
              onChange={(e) => {
                setScopes((cur) => (e.target.checked ? [...cur, s] : cur.filter((x) => x !== s)));
                edited();
              }}
            />{' '}
            {SCOPE_WORDS[s]}
          </label>
        ))}
        {errors.scopes ? (
          <p id={`${id}-scopes-error`} className="field-error">
            {errors.scopes}
          </p>
        ) : null}
      </fieldset>
      <Field id={`${id}-days`} label="For how many days" hint={`At most ${d.maxDurationDays}.`} error={errors.durationDays}>
        <input
          inputMode="numeric"
          value={days}
          onChange={(e) => {
            setDays(e.target.value);
            edited();
          }}
        />
      </Field>
      {errors.form || errors.institutionId || errors.disclosureVersion ? (
        <p className="field-error" role="alert">
          {errors.form ?? errors.institutionId ?? errors.disclosureVersion}
        </p>
      ) : null}
      <div className="actions">
        <button type="submit" disabled={granting.loading}>
          I agree: grant access
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
