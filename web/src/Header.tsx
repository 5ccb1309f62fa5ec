import { useQuery } from '@apollo/client/react';
import type { LinkState } from './apollo.js';
import { ME } from './operations.js';

const LINK_LABEL: Record<LinkState, string> = { connecting: 'Connecting…', connected: 'Live', offline: 'Offline, reconnecting' };

export function Header({ link, onSignOut }: { link: LinkState; onSignOut: () => void }) {
  const { data } = useQuery(ME, { errorPolicy: 'all' });
  return (
    <header className="topbar">
      <span className="brand">paygraph</span>
      <span className="who" data-testid="signed-in-as">
        {data?.me ? `${data.me.name} (@${data.me.handle})` : ''}
      </span>
      <span className={`link link-${link}`} role="status" aria-label={`Alerts connection: ${LINK_LABEL[link]}`}>
        {LINK_LABEL[link]}
      </span>
      <button type="button" className="secondary" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}
