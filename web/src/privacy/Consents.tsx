/**
 * The user's consents, one row per institution they have accounts at: what paygraph may read
 * there and until when, revoke (after a confirmation that says what stops), or grant (after the
 * institution's disclosure text is shown: GrantConsent.tsx). Every consent, past ones included,
 * is listed below. A change refetches the accounts, so the Accounts screen follows at once.
 */
import { useMutation, useQuery } from '@apollo/client/react';
import { useState } from 'react';
import { ErrorNote } from '../ErrorNote.js';
import { dateTime } from '../labels.js';
import { ME, MY_CONSENTS, REVOKE_CONSENT, type ConsentRow } from '../operations.js';
import { ACCESS_WORDS, SCOPE_WORDS, accessTo } from './access.js';
import { GrantConsent } from './GrantConsent.js';

const scopes = (c: ConsentRow) => c.scopes.map((s) => SCOPE_WORDS[s] ?? s).join(', ');

export function Consents({ grantFor }: { grantFor: string | null }) {
  const me = useQuery(ME, { errorPolicy: 'all' });
  const { data, error, loading } = useQuery(MY_CONSENTS, { fetchPolicy: 'cache-and-network' });
  const [granting, setGranting] = useState<string | null>(grantFor);
  const institutions = [...new Map((me.data?.me?.accounts ?? []).map((a) => [a.institution.id, a.institution])).values()];
  const consents = data?.me?.consents;
  if (error) return <ErrorNote error={error} />;
  if (loading && !consents) return <p aria-busy="true">Loading consents…</p>;
  return (
    <>
      <ul className="consents" aria-label="Institutions">
        {institutions.map((i) => {
          const active = (consents ?? []).filter((c) => c.institution.id === i.id && c.status === 'ACTIVE');
          const access = accessTo(i.id, consents, new Set());
          return (
            <li key={i.id} className="consent" data-testid={`consent-${i.id}`} aria-label={i.name}>
              <div className="consent-head">
                <strong>{i.name}</strong>
                <span className={access === 'ok' ? 'credit' : 'revoked'} data-testid="consent-status">
                  {access === 'ok' ? 'Access granted' : ACCESS_WORDS[access]}
                </span>
              </div>
              {active.map((c) => (
                <ActiveConsent key={c.id} consent={c} institution={i.name} />
              ))}
              {active.length === 0 && granting !== i.id ? (
                <button type="button" onClick={() => setGranting(i.id)} aria-label={`Grant access to ${i.name}`}>
                  Grant access…
                </button>
              ) : null}
              {granting === i.id ? <GrantConsent institutionId={i.id} onDone={() => setGranting(null)} /> : null}
            </li>
          );
        })}
      </ul>
      {consents?.length ? (
        <details>
          <summary>Every consent you gave ({consents.length})</summary>
          <table className="log">
            <thead>
              <tr>
                <th scope="col">Institution</th>
                <th scope="col">What</th>
                <th scope="col">Status</th>
                <th scope="col">Granted</th>
                <th scope="col">Ends</th>
              </tr>
            </thead>
            <tbody>
              {consents.map((c) => (
                <tr key={c.id}>
                  <td>{c.institution.name}</td>
                  <td>{scopes(c)}</td>
                  <td>{c.status.toLowerCase()}</td>
                  <td>{dateTime(c.grantedAt)}</td>
                  <td>{dateTime(c.revokedAt ?? c.expiresAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
    </>
  );
}

function ActiveConsent({ consent: c, institution }: { consent: ConsentRow; institution: string }) {
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [revoke, { loading }] = useMutation(REVOKE_CONSENT, { refetchQueries: [MY_CONSENTS, ME], awaitRefetchQueries: true });
  const doRevoke = async () => {
    setProblem(null);
    try {
      const res = await revoke({ variables: { input: { consentId: c.id } } });
      const errors = res.data?.revokeConsent.userErrors ?? [];
      if (errors.length) setProblem(errors.map((e) => e.message).join(' '));
      else setConfirming(false);
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <div className="consent-body">
      <p className="small">
        May read your {scopes(c)}, for payments only, until {dateTime(c.expiresAt)}.
      </p>
      {confirming ? (
        <div role="group" aria-label={`Confirm revoking ${institution}`} className="confirm">
          <p>
            Revoke access to {institution}? paygraph stops reading these accounts at once: their balances and history will not show, and you cannot pay from
            them until you grant access again. Alerts on your cards keep coming.
          </p>
          <div className="actions">
            <button type="button" className="danger" disabled={loading} onClick={() => void doRevoke()}>
              Yes, revoke access
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)}>
              Keep access
            </button>
          </div>
        </div>
      ) : (
        <button type="button" className="secondary" onClick={() => setConfirming(true)} aria-label={`Revoke access to ${institution}`}>
          Revoke…
        </button>
      )}
      {problem ? (
        <p className="field-error" role="alert">
          {problem}
        </p>
      ) : null}
    </div>
  );
}
