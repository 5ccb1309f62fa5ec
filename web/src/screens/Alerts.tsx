/** Every charge alert on the user's purchases, newest first, with its status; open ones can be answered here too. */
import { useMutation, useQuery } from '@apollo/client/react';
import { ErrorNote } from '../ErrorNote.js';
import { dateTime, reason } from '../labels.js';
import { money } from '../money.js';
import { MY_ALERTS, RESOLVE } from '../operations.js';
import { otherErrors } from '../privacy/access.js';

const STATUS: Record<string, string> = { OPEN: 'Waiting for you', CONFIRMED_LEGITIMATE: 'You confirmed it', CONFIRMED_FRAUD: 'Fraud: card frozen' };

export function Alerts() {
  // errorPolicy 'all': an alert on an account whose consent is revoked still shows (its account's
  // name is null with CONSENT_REQUIRED); fraud alerts never stop for consent (docs/consent.md).
  const { data, error, loading } = useQuery(MY_ALERTS, { fetchPolicy: 'cache-and-network', errorPolicy: 'all' });
  const [resolve, resolving] = useMutation(RESOLVE);
  if (error && otherErrors(error)) return <ErrorNote error={error} />;
  if (loading && !data) return <p aria-busy="true">Loading alerts…</p>;
  const alerts = [...(data?.chargeAlerts ?? [])].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  if (alerts.length === 0) return <p>No alerts. Charges that look unusual show here and as a notification.</p>;
  return (
    <ol className="history" aria-label="Charge alerts, newest first">
      {alerts.map((a) => (
        <li key={a.id} className="tx">
          <div className="tx-main">
            <span className="tx-who">
              {money(a.purchase.amount)} at {a.purchase.merchant.name} ({a.purchase.merchant.country})
            </span>
            <span className="muted small">
              {a.account.displayName} · {dateTime(a.createdAt)} · risk {a.riskScore} · {a.reasons.map(reason).join(', ')}
            </span>
          </div>
          {a.status === 'OPEN' ? (
            <span className="actions">
              <button
                type="button"
                className="secondary"
                disabled={resolving.loading}
                onClick={() => void resolve({ variables: { id: a.id, fraudulent: false } })}
              >
                It was me
              </button>
              <button type="button" className="danger" disabled={resolving.loading} onClick={() => void resolve({ variables: { id: a.id, fraudulent: true } })}>
                Not me, freeze my card
              </button>
            </span>
          ) : (
            <span className="status">{STATUS[a.status] ?? a.status}</span>
          )}
        </li>
      ))}
    </ol>
  );
}
