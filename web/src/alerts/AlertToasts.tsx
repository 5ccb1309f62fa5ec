/**
 * A live toast for each charge alert raised on the user's own purchases (graphql-ws), with what
 * the fraud rules saw and the two answers. "Not me" confirms fraud, which freezes the card; the
 * next purchase with it is refused (ACCOUNT_FROZEN). Each alert toasts once (resume.ts).
 */
import { useMutation, useSubscription } from '@apollo/client/react';
import { useState } from 'react';
import { reason } from '../labels.js';
import { money } from '../money.js';
import { CHARGE_ALERTS, RESOLVE, type RaisedAlert } from '../operations.js';
import { markAlertSeen, seenAlertIds } from './resume.js';

interface Toast {
  alert: RaisedAlert;
  outcome?: string;
}

export function AlertToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  useSubscription(CHARGE_ALERTS, {
    onData: ({ data }) => {
      const alert = data.data?.chargeAlertRaised;
      if (!alert || seenAlertIds().has(alert.id)) return;
      markAlertSeen(alert.id);
      setToasts((t) => [...t, { alert }]);
    },
  });
  const dismiss = (id: string) => setToasts((t) => t.filter((x) => x.alert.id !== id));
  const settle = (id: string, outcome: string) => setToasts((t) => t.map((x) => (x.alert.id === id ? { ...x, outcome } : x)));
  return (
    <section className="toasts" aria-label="Charge alerts" aria-live="assertive">
      {toasts.map((t) => (
        <AlertToast key={t.alert.id} toast={t} onSettled={(o) => settle(t.alert.id, o)} onDismiss={() => dismiss(t.alert.id)} />
      ))}
    </section>
  );
}

function AlertToast({ toast, onSettled, onDismiss }: { toast: Toast; onSettled: (outcome: string) => void; onDismiss: () => void }) {
  const a = toast.alert;
  const [resolve, { loading }] = useMutation(RESOLVE);
  const [error, setError] = useState<string | null>(null);
  const answer = async (fraudulent: boolean) => {
    setError(null);
    try {
      const res = await resolve({ variables: { id: a.id, fraudulent } });
      const p = res.data?.resolveChargeAlert;
      if (p?.userErrors.length) return setError(p.userErrors.map((e) => e.message).join(' '));
      onSettled(fraudulent ? 'Card frozen. Purchases with it will be refused.' : 'Thanks: marked as yours.');
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const title = `Is this you? ${money(a.purchase.amount)} at ${a.purchase.merchant.name}`;
  return (
    <article className="toast" aria-label={title} data-testid="alert-toast">
      <h2>{title}</h2>
      <p className="muted small">
        {a.purchase.merchant.country} · risk score <strong data-testid="risk-score">{a.riskScore}</strong>
      </p>
      <ul className="reasons" aria-label="Why we flagged it">
        {a.reasons.map((r) => (
          <li key={r}>{reason(r)}</li>
        ))}
      </ul>
      {toast.outcome ? (
        <>
          <p role="status" className="success">
            {toast.outcome}
          </p>
          <button type="button" className="secondary" onClick={onDismiss}>
            Dismiss
          </button>
        </>
      ) : (
        <div className="actions">
          <button type="button" className="secondary" disabled={loading} onClick={() => void answer(false)}>
            It was me
          </button>
          <button type="button" className="danger" disabled={loading} onClick={() => void answer(true)}>
            Not me, freeze my card
          </button>
        </div>
      )}
      {error ? (
        <p className="field-error" role="alert">
          {error}
        </p>
      ) : null}
    </article>
  );
}
