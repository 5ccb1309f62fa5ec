/**
 * Every linked account and card with its institution, kind, mask and balances. An institution
 * the user revoked consent to shows its accounts as "access revoked", with a link to grant it
 * again, instead of failing: the API answers what it may (id, kind, institution) with
 * CONSENT_REQUIRED errors for the rest (errorPolicy 'all', privacy/access.ts).
 */
import { useQuery } from '@apollo/client/react';
import { ErrorNote } from '../ErrorNote.js';
import { ACCOUNT_KIND, INSTITUTION_KIND, dateTime } from '../labels.js';
import { money } from '../money.js';
import { ME, MY_CONSENTS, type AccountRow } from '../operations.js';
import { ACCESS_WORDS, accessTo, consentRequired, otherErrors, type Access } from '../privacy/access.js';

export function Accounts() {
  const { data, loading, error } = useQuery(ME, { fetchPolicy: 'cache-and-network', errorPolicy: 'all' });
  const consents = useQuery(MY_CONSENTS, { fetchPolicy: 'cache-and-network', errorPolicy: 'all' });
  if (error && !data?.me) return <ErrorNote error={error} />;
  if (loading && !data) return <p aria-busy="true">Loading accounts…</p>;
  const accounts = data?.me?.accounts ?? [];
  if (accounts.length === 0) return <p>No linked accounts yet.</p>;
  const refused = consentRequired(error);
  return (
    <>
      {error && otherErrors(error) ? <ErrorNote error={error} /> : null}
      <ul className="cards" aria-label="Linked accounts">
        {accounts.map((a) => (
          <AccountCard key={a.id} account={a} access={accessTo(a.institution.id, consents.data?.me?.consents, refused)} />
        ))}
      </ul>
    </>
  );
}

export function AccountCard({ account: a, access = 'ok' }: { account: AccountRow; access?: Access }) {
  const name = a.displayName ?? ACCOUNT_KIND[a.kind] ?? a.kind;
  const heading = `${name} •••• ${a.mask ?? '····'}`;
  return (
    <li className="card" aria-label={heading} data-testid={`account-${a.id}`}>
      <div className="card-head">
        <span className="institution">{a.institution.name}</span>
        <span className="muted">{INSTITUTION_KIND[a.institution.kind] ?? a.institution.kind}</span>
      </div>
      <h2 className="card-title">
        {name} <span className="mask">•••• {a.mask ?? '····'}</span>
      </h2>
      <p className="muted">{ACCOUNT_KIND[a.kind] ?? a.kind}</p>
      {access !== 'ok' || !a.balance ? (
        <>
          <p className="revoked" data-testid="access">
            {access === 'ok' ? 'Balance unavailable' : ACCESS_WORDS[access]}
          </p>
          {access !== 'ok' ? (
            <p className="small">
              paygraph does not read this account at {a.institution.name}.{' '}
              <a href={`#/privacy/${encodeURIComponent(a.institution.id)}`} aria-label={`Grant access to ${a.institution.name} again`}>
                Grant access again
              </a>
            </p>
          ) : null}
        </>
      ) : (
        <>
          <dl className="balances">
            <div>
              <dt>Available</dt>
              <dd data-testid="available">{money(a.balance.available)}</dd>
            </div>
            <div>
              <dt>Current</dt>
              <dd data-testid="current">{money(a.balance.current)}</dd>
            </div>
          </dl>
          <p className="muted small">as of {dateTime(a.balance.asOf)}</p>
        </>
      )}
    </li>
  );
}
