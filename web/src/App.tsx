/**
 * The shell: sign-in, then one Apollo session per token, the navigation between screens (the URL
 * hash, so /app/#/history survives a reload), the connection state, and the alert toasts, which
 * live above every screen.
 */
import { ApolloProvider } from '@apollo/client/react';
import { useEffect, useRef, useState } from 'react';
import { createSession, type LinkState, type Session } from './apollo.js';
import { AlertToasts } from './alerts/AlertToasts.js';
import { storedToken, storeToken } from './session.js';
import { Accounts } from './screens/Accounts.js';
import { Alerts } from './screens/Alerts.js';
import { History } from './screens/History.js';
import { Pay } from './screens/Pay.js';
import { Privacy } from './screens/Privacy.js';
import { Send } from './screens/Send.js';
import { SignIn } from './screens/SignIn.js';
import { Header } from './Header.js';

export const SCREENS = [
  { id: 'accounts', label: 'Accounts', render: () => <Accounts /> },
  { id: 'history', label: 'History', render: () => <History /> },
  { id: 'send', label: 'Send money', render: () => <Send /> },
  { id: 'pay', label: 'Pay', render: () => <Pay /> },
  { id: 'alerts', label: 'Alerts', render: () => <Alerts /> },
  { id: 'privacy', label: 'Privacy', render: () => <Privacy /> },
] as const;
type ScreenId = (typeof SCREENS)[number]['id'];

function screenFromHash(): ScreenId {
  // `#/privacy/ins_chase`: the screen is the first segment; the screen reads the rest.
  const id = window.location.hash.replace(/^#\/?/, '').split('/')[0];
  return (SCREENS.find((s) => s.id === id)?.id ?? 'accounts') as ScreenId;
}

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  if (!token)
    return (
      <SignIn
        onToken={(t) => {
          storeToken(t);
          setToken(t);
        }}
      />
    );
  return (
    <SignedIn
      key={token}
      token={token}
      onSignOut={() => {
        storeToken(null);
        setToken(null);
      }}
    />
  );
}

function SignedIn({ token, onSignOut }: { token: string; onSignOut: () => void }) {
  const [link, setLink] = useState<LinkState>('connecting');
  // Created in an effect, not a memo: the effect's cleanup closes exactly the session it made
  // (StrictMode mounts twice in development; a memoized session would be closed and kept).
  const [session, setSession] = useState<Session | null>(null);
  useEffect(() => {
    // A closed session's last events (its socket's `closed`, after the next one connected) must
    // not overwrite the state of the session that replaced it.
    let current = true;
    const s = createSession(token, (state) => current && setLink(state));
    setSession(s);
    return () => {
      current = false;
      void s.close();
    };
  }, [token]);
  const [screen, setScreen] = useState<ScreenId>(screenFromHash);
  useEffect(() => {
    const onHash = () => setScreen(screenFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const current = SCREENS.find((s) => s.id === screen)!;
  // After a change of screen (not on load), focus moves to the new screen, so that a keyboard or
  // screen-reader user lands on its heading rather than on the tab they left.
  const firstScreen = useRef(true);
  useEffect(() => {
    document.title = `${current.label} · paygraph`;
    if (firstScreen.current) firstScreen.current = false;
    else document.getElementById('main')?.focus();
  }, [current.label]);
  if (!session) return null;
  return (
    <ApolloProvider client={session.client}>
      <div className="shell">
        <Header link={link} onSignOut={onSignOut} />
        <nav aria-label="Screens" className="tabs">
          {SCREENS.map((s) => (
            <a key={s.id} href={`#/${s.id}`} aria-current={s.id === screen ? 'page' : undefined}>
              {s.label}
            </a>
          ))}
        </nav>
        <main id="main" tabIndex={-1} aria-labelledby="screen-title">
          <h1 id="screen-title">{current.label}</h1>
          {current.render()}
        </main>
        <AlertToasts link={link} />
      </div>
    </ApolloProvider>
  );
}
