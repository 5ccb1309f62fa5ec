/**
 * Every linked account and card with its institution, kind, mask and balances. Privacy hook
 * (issue #14, consents): an account whose institution's consent is revoked will come back as
 * "access revoked" instead of an error; AccountCard renders that state from `revoked`.
 */
import { useQuery } from '@apollo/client/react';
import { ErrorNote } from '../ErrorNote.js';
import { ACCOUNT_KIND, INSTITUTION_KIND, dateTime } from '../labels.js';
import { money } from '../money.js';
import { ME, type AccountRow } from '../operations.js';

export function Accounts() {
  const { data, loading, error } = useQuery(ME);
  if (error) return <ErrorNote error={error} />;
  if (loading && !data) return <p aria-busy="true">Loading accounts…</p>;
  const accounts = data?.me?.accounts ?? [];
  if (accounts.length === 0) return <p>No linked accounts yet.</p>;
  return (
    <ul className="cards" aria-label="Linked accounts">
      {accounts.map((a) => (
        <AccountCard key={a.id} account={a} />
      ))}
    </ul>
  );
}

export function AccountCard({ account: a, revoked = false }: { account: AccountRow; revoked?: boolean }) {
  const heading = `${a.displayName} •••• ${a.mask}`;
  return (
    <li className="card" aria-label={heading} data-testid={`account-${a.id}`}>
      <div className="card-head">
        <span className="institution">{a.institution.name}</span>
        <span className="muted">{INSTITUTION_KIND[a.institution.kind] ?? a.institution.kind}</span>
      </div>
      <h2 className="card-title">
        {a.displayName} <span className="mask">•••• {a.mask}</span>
      </h2>
      <p className="muted">{ACCOUNT_KIND[a.kind] ?? a.kind}</p>
      {revoked ? (
        <p className="revoked">Access revoked</p>
      ) : (
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
      )}
      {revoked ? null : <p className="muted small">as of {dateTime(a.balance.asOf)}</p>}
    </li>
  );
}
