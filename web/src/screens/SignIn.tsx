/**
 * Sign-in: in development the gateway lists the seeded users and mints their tokens (loopback
 * only); anywhere, a token from the app's own identity provider can be pasted.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { devToken, devUsers, looksLikeJwt, type DevUser } from '../session.js';

export function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [users, setUsers] = useState<DevUser[] | null | undefined>(undefined);
  const [pasted, setPasted] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void devUsers().then(setUsers);
  }, []);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!looksLikeJwt(pasted)) return setError('That is not a JWT (three base64url parts separated by dots).');
    onToken(pasted.trim());
  };
  return (
    <main className="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in to paygraph</h1>
      {users === undefined ? null : users ? (
        <section aria-labelledby="dev-users">
          <h2 id="dev-users">Development users</h2>
          <p className="hint">Seeded users of this development install; tokens are minted by the gateway on loopback only.</p>
          <ul className="user-list">
            {users.map((u) => (
              <li key={u.handle}>
                <button
                  type="button"
                  onClick={() => devToken(u.handle).then(onToken, (err: unknown) => setError(err instanceof Error ? err.message : String(err)))}
                >
                  Sign in as {u.name} <span className="muted">@{u.handle}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <form onSubmit={submit} aria-labelledby="paste-title">
        <h2 id="paste-title">Sign in with a token</h2>
        <label htmlFor="token">Access token (purpose “payments”)</label>
        <textarea id="token" rows={3} value={pasted} onChange={(e) => setPasted(e.target.value)} aria-describedby={error ? 'token-error' : undefined} />
        {error ? (
          <p id="token-error" className="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
