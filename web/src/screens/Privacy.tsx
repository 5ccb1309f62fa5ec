/**
 * Privacy: who read the user's payment data, from the data-access log the fence writes (today's
 * API). Placeholders for what lands next:
 * - consents per institution (issue #14): grant with the disclosure text shown, revoke;
 * - a "verified in the public log" mark per record (issue #13): the browser fetches the signed
 *   checkpoint, checks its Ed25519 signature against the pinned key and the record's inclusion
 *   proof itself, with verify/checkpoint.ts and verify/merkle.ts (already written and tested).
 */
import { useQuery } from '@apollo/client/react';
import { ErrorNote } from '../ErrorNote.js';
import { dateTime } from '../labels.js';
import { ACCESS_LOG } from '../operations.js';

export function Privacy() {
  const { data, error, loading, fetchMore } = useQuery(ACCESS_LOG, { variables: { first: 20 }, fetchPolicy: 'cache-and-network' });
  const log = data?.me?.dataAccessLog;
  return (
    <>
      <section className="panel" aria-labelledby="consents-title">
        <h2 id="consents-title">Consents</h2>
        <p className="muted" data-testid="consents-placeholder">
          Which banks share your data with paygraph, for payments only, and revoking that consent, will show here.
        </p>
      </section>
      <section aria-labelledby="log-title">
        <h2 id="log-title">Who read your payment data</h2>
        {error ? <ErrorNote error={error} /> : null}
        {loading && !log ? <p aria-busy="true">Loading…</p> : null}
        {log ? (
          <>
            <p className="muted">{log.totalCount} records, newest first. Each will carry a mark once the public log is published.</p>
            <table className="log">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Operation</th>
                  <th scope="col">Purpose</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Public log</th>
                </tr>
              </thead>
              <tbody>
                {log.edges.map(({ node: r }) => (
                  <tr key={r.id}>
                    <td>{dateTime(r.at)}</td>
                    <td>
                      {r.operationName ?? 'anonymous'}
                      <span className="muted small"> {r.client ?? ''}</span>
                    </td>
                    <td>{r.purpose ?? 'none'}</td>
                    <td className={r.decision === 'ALLOWED' ? 'credit' : 'debit'}>{r.decision.toLowerCase()}</td>
                    <td className="muted">not yet published</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {log.pageInfo.hasNextPage ? (
              <button type="button" className="secondary" onClick={() => void fetchMore({ variables: { after: log.pageInfo.endCursor } })}>
                Load more
              </button>
            ) : null}
          </>
        ) : null}
      </section>
    </>
  );
}
