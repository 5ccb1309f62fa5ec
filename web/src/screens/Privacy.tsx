/**
 * Privacy: the user's consents per institution (grant with the disclosure shown first, revoke
 * with a confirmation), and who read their payment data, each record checked by the browser
 * against the public transparency log. `#/privacy/<institutionId>` opens the grant form for that
 * institution (the Accounts screen's "Grant access again").
 */
import { Consents } from '../privacy/Consents.js';
import { AccessLog } from '../privacy/AccessLog.js';

export function Privacy() {
  const grantFor = decodeURIComponent(window.location.hash.split('/')[2] ?? '') || null;
  return (
    <>
      <section className="panel wide" aria-labelledby="consents-title">
        <h2 id="consents-title">Consents</h2>
        <p className="muted small">Which banks and card issuers let paygraph read your accounts, for payments only.</p>
        <Consents grantFor={grantFor} />
      </section>
      <section aria-labelledby="log-title">
        <h2 id="log-title">Who read your payment data</h2>
        <AccessLog />
      </section>
    </>
  );
}
