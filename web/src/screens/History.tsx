/**
 * History of one account, newest first, in pages of 20 by Relay cursor; the next page loads when
 * the end of the list scrolls into view (or with the "Load more" button, for the keyboard).
 *
 * New rows without a reload: the sender's screen refetches after a send (Send.tsx); a recipient
 * has no event to listen to (the API's only subscription is charge alerts), so an open History
 * re-reads its first page every few seconds while the tab is visible, and at once when the tab
 * comes back. The cache splices that page onto the list already scrolled (pagination.ts).
 */
import { NetworkStatus } from '@apollo/client';
import { useQuery } from '@apollo/client/react';
import { useEffect, useRef, useState } from 'react';
import { ErrorNote } from '../ErrorNote.js';
import { dateTime, accountName } from '../labels.js';
import { money } from '../money.js';
import { HISTORY, ME, type HistoryNode } from '../operations.js';

export const PAGE_SIZE = 20;
export const HEAD_POLL_MS = 3000;

export function History() {
  const me = useQuery(ME, { errorPolicy: 'all' });
  const accounts = me.data?.me?.accounts ?? [];
  const [accountId, setAccountId] = useState<string | null>(null);
  // Default: the first checking account (where transfers arrive), else the first account.
  const selected = accountId ?? (accounts.find((a) => a.kind === 'CHECKING') ?? accounts[0])?.id ?? null;
  if (me.error) return <ErrorNote error={me.error} />;
  if (!selected) return <p aria-busy="true">Loading…</p>;
  return (
    <section>
      <div className="field inline">
        <label htmlFor="history-account">Account</label>
        <select id="history-account" value={selected} onChange={(e) => setAccountId(e.target.value)}>
          {accounts.map((a) => (
            <option key={a.id} value={a.id}>
              {accountName(a)}
            </option>
          ))}
        </select>
      </div>
      <Transactions key={selected} accountId={selected} />
    </section>
  );
}

function Transactions({ accountId }: { accountId: string }) {
  const { data, error, fetchMore, networkStatus, startPolling, stopPolling, refetch } = useQuery(HISTORY, {
    variables: { accountId, first: PAGE_SIZE },
    notifyOnNetworkStatusChange: true,
  });
  useEffect(() => {
    const apply = () => {
      if (document.visibilityState === 'visible') {
        void refetch();
        startPolling(HEAD_POLL_MS);
      } else stopPolling();
    };
    apply();
    document.addEventListener('visibilitychange', apply);
    return () => {
      document.removeEventListener('visibilitychange', apply);
      stopPolling();
    };
  }, [refetch, startPolling, stopPolling]);
  const conn = data?.account?.transactions;
  const loadingMore = networkStatus === NetworkStatus.fetchMore;
  const more = () => {
    if (!conn?.pageInfo.hasNextPage || loadingMore) return;
    void fetchMore({ variables: { after: conn.pageInfo.endCursor } });
  };
  const sentinel = useRef<HTMLLIElement>(null);
  const moreRef = useRef(more);
  moreRef.current = more;
  useEffect(() => {
    const el = sentinel.current;
    if (!el) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) moreRef.current();
    });
    io.observe(el);
    return () => io.disconnect();
  }, [conn?.pageInfo.endCursor]);

  if (error && !data) return <ErrorNote error={error} />;
  if (!conn) return <p aria-busy="true">Loading history…</p>;
  return (
    <>
      <p className="muted" aria-live="polite">
        {conn.edges.length} of {conn.totalCount} transactions
      </p>
      <ol className="history" aria-label="Transactions, newest first">
        {conn.edges.map(({ node }) => (
          <Row key={node.id} t={node} />
        ))}
        {conn.pageInfo.hasNextPage ? (
          <li ref={sentinel} className="history-more">
            <button type="button" className="secondary" onClick={more} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : 'Load more'}
            </button>
          </li>
        ) : (
          <li className="history-end muted">That is everything.</li>
        )}
      </ol>
    </>
  );
}

function Row({ t }: { t: HistoryNode }) {
  const who = t.merchant
    ? t.merchant.name
    : t.counterparty
      ? `${t.direction === 'DEBIT' ? 'To' : 'From'} ${t.counterparty.name} (@${t.counterparty.handle})`
      : t.description;
  const signed = t.direction === 'DEBIT' ? `−${money(t.amount)}` : `+${money(t.amount)}`;
  return (
    <li className="tx" data-testid="tx" data-posted-at={t.postedAt}>
      <div className="tx-main">
        <span className="tx-who">{who}</span>
        <span className="muted small">
          {t.kind.toLowerCase()} · {dateTime(t.postedAt)}
          {t.status !== 'POSTED' ? ` · ${t.status.toLowerCase()}` : ''}
          {t.description && t.description !== who ? ` · ${t.description}` : ''}
        </span>
      </div>
      <span className={`amount ${t.direction === 'DEBIT' ? 'debit' : 'credit'}`}>{signed}</span>
    </li>
  );
}
