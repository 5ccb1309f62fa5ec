/**
 * Who read the user's payment data (the fence's data-access log), each record with a "verified
 * in the public log" mark the browser computes itself: the latest checkpoint, its Ed25519
 * signature checked with WebCrypto against the key pinned on first use (verify/log.ts), then per
 * record the subject commitment and the inclusion proof against that checkpoint's root
 * (verify/access-record.ts). Records newer than the checkpoint are "pending"; while any is, the
 * checkpoint is fetched again every 10 s (the log signs one at least that often).
 */
import { useQuery } from '@apollo/client/react';
import { useEffect, useState } from 'react';
import { ErrorNote } from '../ErrorNote.js';
import { dateTime } from '../labels.js';
import { ACCESS_LOG, type AccessRecord } from '../operations.js';
import { markOf, type Mark } from '../verify/access-record.js';
import { fetchInclusionProof, fetchVerifiedCheckpoint, repin, type LogState } from '../verify/log.js';

const CHECKPOINT_POLL_MS = 10_000;

export function AccessLog() {
  const { data, error, loading, fetchMore, refetch } = useQuery(ACCESS_LOG, { variables: { first: 20 }, fetchPolicy: 'cache-and-network' });
  const [log, setLog] = useState<LogState | null>(null);
  const [nonce, setNonce] = useState(0);
  const me = data?.me;
  const records = me?.dataAccessLog.edges.map((e) => e.node) ?? [];
  useEffect(() => {
    let live = true;
    void fetchVerifiedCheckpoint().then((s) => live && setLog(s));
    return () => {
      live = false;
    };
  }, [nonce]);
  // Pending records wait for the next checkpoint: fetch it again until none is pending.
  const anyPending = log?.ok === true && records.some((r) => BigInt(r.leafIndex) >= log.checkpoint.treeSize);
  useEffect(() => {
    if (!anyPending) return;
    const t = setTimeout(() => setNonce((n) => n + 1), CHECKPOINT_POLL_MS);
    return () => clearTimeout(t);
  }, [anyPending, nonce]);
  const checkAgain = () => {
    void refetch();
    setNonce((n) => n + 1);
  };
  const conn = me?.dataAccessLog;
  return (
    <>
      {log && !log.ok && log.keyChanged ? (
        <div className="warning" role="alert" data-testid="key-changed">
          <p>
            <strong>The public log&apos;s key has changed</strong> since this browser first saw it. Nothing can be verified against it: either the log was
            re-keyed (ask your bank, which pins it too) or someone is showing you a different log.
          </p>
          <p className="small">
            Pinned: <code>{log.keyChanged.pinned}</code>
            <br />
            Served now: <code>{log.keyChanged.served}</code>
          </p>
          <button
            type="button"
            className="secondary"
            onClick={() => {
              repin(log.keyChanged!.served);
              setNonce((n) => n + 1);
            }}
          >
            Trust the new key
          </button>
        </div>
      ) : null}
      {error ? <ErrorNote error={error} /> : null}
      {loading && !conn ? <p aria-busy="true">Loading…</p> : null}
      {conn && me ? (
        <>
          <p className="muted" data-testid="checkpoint">
            {conn.totalCount} records, newest first.{' '}
            {log?.ok
              ? `Checked against the public log's signed checkpoint of ${log.checkpoint.treeSize} entries (${log.checkpoint.origin}).`
              : log
                ? `The public log could not be checked: ${log.reason}.`
                : 'Fetching the public log…'}{' '}
            <button type="button" className="link" onClick={checkAgain}>
              Check again
            </button>
          </p>
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
              {conn.edges.map(({ node: r }) => (
                <tr key={r.id} data-testid={`record-${r.id}`} data-leaf-index={r.leafIndex}>
                  <td>{dateTime(r.at)}</td>
                  <td>
                    {whatRan(r)}
                    {/* The verified credential; the declared client name only as a hint, since anyone can send one. */}
                    <span className="muted small" data-testid="credential" title={r.client ? `declared client name: ${r.client}` : undefined}>
                      {' '}
                      {r.clientId ? `via ${r.clientId}` : ''}
                    </span>
                  </td>
                  <td>{r.purpose ?? 'none'}</td>
                  <td className={r.decision === 'ALLOWED' ? 'credit' : 'debit'}>
                    {r.decision.toLowerCase()}
                    {r.reason ? <span className="muted small"> {r.reason}</span> : null}
                  </td>
                  <td>
                    <RecordMark record={r} userId={me.id} log={log} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {conn.pageInfo.hasNextPage ? (
            <button type="button" className="secondary" onClick={() => void fetchMore({ variables: { after: conn.pageInfo.endCursor } })}>
              Load more
            </button>
          ) : null}
        </>
      ) : null}
    </>
  );
}

const LAYER_WORDS: Record<string, string> = {
  'consent-grant': 'consent granted',
  'consent-revoke': 'consent revoked',
  'consent-expiry': 'consent expired',
};

/** The operation's name; the consent layer's own records (which carry none) by what they were. */
function whatRan(r: AccessRecord): string {
  if (r.operationName) return r.operationName;
  if (r.layer === 'consent') return `consent check: ${r.coordinates.join(', ')}`;
  return LAYER_WORDS[r.layer] ?? 'unnamed operation';
}

/** One record's mark: recomputed when its leaf, its salt or the checkpoint changes. */
function RecordMark({ record: r, userId, log }: { record: AccessRecord; userId: string; log: LogState | null }) {
  const [mark, setMark] = useState<Mark | null>(null);
  useEffect(() => {
    if (!log) return;
    if (!log.ok) return setMark({ state: 'not-verified', reason: log.reason });
    let live = true;
    const cp = log.checkpoint;
    void (async () => {
      const pending = BigInt(r.leafIndex) >= cp.treeSize;
      const proof = pending ? null : await fetchInclusionProof(r.leafIndex, cp.treeSize);
      const m = await markOf({ ...r, proof }, userId, cp);
      if (live) setMark(m);
    })();
    return () => {
      live = false;
    };
    // Every fetched checkpoint (a new `log`) re-checks the record: "Check again" after a change must not show a stale mark.
  }, [r, userId, log]);
  if (!mark) return <span className="muted">checking…</span>;
  if (mark.state === 'verified')
    return (
      <span className="credit" data-testid="mark" data-state="verified">
        ✓ verified in the public log
      </span>
    );
  if (mark.state === 'pending')
    return (
      <span className="muted" data-testid="mark" data-state="pending">
        pending: not in a checkpoint yet
      </span>
    );
  return (
    <span className="debit" data-testid="mark" data-state="not-verified" title={mark.reason}>
      ✗ not verified ({mark.reason})
    </span>
  );
}
