/**
 * A live toast for each charge alert raised on the user's own purchases (graphql-ws), with what
 * the fraud rules saw and the two answers. "Not me" confirms fraud, which freezes the card; the
 * next purchase with it is refused (ACCOUNT_FROZEN).
 *
 * Resumed by cursor (docs/alerts.md, "Resuming"): on every (re)connection of the socket the app
 * subscribes again with `after` = the cursor of the last alert it received (alerts/resume.ts),
 * so an alert raised while the tab was offline, or the gateway restarting, is replayed; ids
 * already shown are skipped, so it toasts once. Before any alert was received there is no cursor:
 * the stream starts after the newest alert `MyAlerts` lists, and an alert listed on a reconnect
 * that was not there at the start is shown then.
 */
import { useApolloClient, useMutation } from '@apollo/client/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { LinkState } from '../apollo.js';
import { reason } from '../labels.js';
import { money } from '../money.js';
import { CHARGE_ALERTS, MY_ALERTS, RESOLVE, type RaisedAlert } from '../operations.js';
import { forgetCursor, keepCursor, lastCursor, markAlertSeen, seenAlertIds } from './resume.js';

interface Toast {
  alert: RaisedAlert;
  outcome?: string;
}

const RESUBSCRIBE_MS = 1000;

function codeOf(error: unknown): string | undefined {
  const errors = (error as { errors?: { extensions?: { code?: unknown } }[] } | undefined)?.errors;
  const code = errors?.[0]?.extensions?.code;
  return typeof code === 'string' ? code : undefined;
}

export function AlertToasts({ link }: { link: LinkState }) {
  const client = useApolloClient();
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [attempt, setAttempt] = useState(0);
  /** The alerts listed when the stream first started without a cursor (null: it started with one). */
  const listedAtStart = useRef<Set<string> | null>(null);

  const show = useCallback((alert: RaisedAlert) => {
    keepCursor(alert.cursor);
    // Answered meanwhile (on another device): nothing to ask.
    if (alert.status !== 'OPEN' || seenAlertIds().has(alert.id)) return;
    markAlertSeen(alert.id);
    setToasts((t) => (t.some((x) => x.alert.id === alert.id) ? t : [...t, { alert }]));
  }, []);

  useEffect(() => {
    if (link !== 'connected') return;
    let live = true;
    let sub: { unsubscribe(): void } | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const again = () => {
      if (live) retry = setTimeout(() => setAttempt((n) => n + 1), RESUBSCRIBE_MS);
    };
    void (async () => {
      if (!lastCursor()) {
        const listed = await client.query({ query: MY_ALERTS, fetchPolicy: 'network-only', errorPolicy: 'all' }).catch(() => null);
        if (!live) return;
        const alerts = listed?.data?.chargeAlerts ?? [];
        if (listedAtStart.current === null) listedAtStart.current = new Set(alerts.map((a) => a.id));
        else for (const a of [...alerts].reverse()) if (a.status === 'OPEN' && !listedAtStart.current.has(a.id)) show(a);
        if (alerts[0]) keepCursor(alerts[0].cursor);
      }
      sub = client.subscribe({ query: CHARGE_ALERTS, variables: { after: lastCursor() ?? null } }).subscribe({
        next: ({ data, error }) => {
          if (data?.chargeAlertRaised) show(data.chargeAlertRaised);
          if (error) {
            if (codeOf(error) === 'CURSOR_EXPIRED') forgetCursor();
            again();
          }
        },
        error: (error: unknown) => {
          if (codeOf(error) === 'CURSOR_EXPIRED') forgetCursor();
          again();
        },
      });
    })();
    return () => {
      live = false;
      clearTimeout(retry);
      sub?.unsubscribe();
    };
  }, [link, attempt, client, show]);

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
