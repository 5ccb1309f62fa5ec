/**
 * npm run watch:alerts -- <handle> [gateway-url]: watches a seeded user's charge alerts live, over
 * graphql-ws through the gateway (ChargeAlertsAfter, the trusted resumable form of the contract's
 * ChargeAlerts subscription: operations/paygraph.graphql), one line per alert.
 *
 * The token is signed like `npm run token` (the HS256 secret, or PAYGRAPH_JWT_PRIVATE_KEY_FILE); the gateway
 * URL defaults to ws://127.0.0.1:<PORT>/graphql. It resumes like an app should: it remembers the
 * `cursor` of the last alert it printed, and when the connection drops (a gateway restarts or
 * dies) or the token expires (UNAUTHENTICATED: it signs a new one), it subscribes again with
 * `after` set to that cursor, so no alert raised in between is missed or printed twice.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { DEV_CLIENT_IDS, signToken } from '../lib/auth.js';
import { fail, messageOf, say, warn } from '../lib/cli.js';
import { issuerTokensMessage, loadConfig, mintingKey } from '../lib/config.js';
import { readManifest } from '../operations/manifest.js';
import { buildFixture } from '../seeds/fixture.js';

// The trusted document (operations/paygraph.graphql): a production gateway runs nothing else.
const CHARGE_ALERTS = readManifest().operations.find((o) => o.name === 'ChargeAlertsAfter')!.body;

interface Raised {
  id: string;
  cursor: string;
  riskScore: number;
  reasons: string[];
  purchase: { id: string; amount: { amount: string; currency: string }; merchant: { name: string; country: string } };
  account: { id: string };
  createdAt: string;
}

const [handle, urlArg] = process.argv.slice(2);
const users = buildFixture().users;
const user = users.find((u) => u.handle === handle);
if (!user) fail(`usage: npm run watch:alerts -- <handle> [gateway-url]\n  handle: one of ${users.map((u) => u.handle).join(', ')}`, 2);
const config = loadConfig();
const url = (urlArg ?? `http://127.0.0.1:${config.port}/graphql`).replace(/^http/, 'ws');
const key = mintingKey(config);
if (key === null) fail(issuerTokensMessage(config), 2);
/** Reconnection backoff after a dropped connection: 250 ms doubling to 5 s. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
const mint = () => signToken(key, user.id, 'payments', '12h', { ...config.tokenVerifier, clientId: DEV_CLIENT_IDS.cli });
let token = await mint();
/** The cursor of the last alert printed: where a new subscription resumes. */
let last: string | null = null;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  // Read on every connection: a renewed token is used from the next one on.
  connectionParams: () => ({ authorization: `Bearer ${token}`, 'apollographql-client-name': 'watch-alerts' }),
  // Reconnection is done here, per subscription, with the last cursor (below).
  retryAttempts: 0,
  on: {
    connected: () =>
      warn(`watching charge alerts of ${user.handle} (${user.id}) on ${url}${last ? ', resuming after the last one printed' : ''}; Ctrl-C to stop`),
    closed: (e) => {
      const code = (e as { code?: number }).code;
      if (code === 4403) warn(`the gateway closed the connection (${code}): ${(e as { reason?: string }).reason ?? ''}`);
    },
  },
});

const done = new Promise<number>((resolve) => {
  let failures = 0;
  const watch = () => {
    client.subscribe<{ chargeAlertRaised: Raised }>(
      { query: CHARGE_ALERTS, operationName: 'ChargeAlertsAfter', variables: { after: last } },
      {
        next: (result) => {
          failures = 0;
          if (result.errors) warn(`error: ${JSON.stringify(result.errors)}`);
          const a = result.data?.chargeAlertRaised;
          if (!a) return;
          last = a.cursor;
          const m = a.purchase.merchant;
          say(
            `${a.createdAt}  ALERT ${a.id}  risk ${a.riskScore}  ${a.reasons.join(',')}  ${a.purchase.amount.amount} ${a.purchase.amount.currency} at ${m.name} (${m.country}) on ${a.account.id}  purchase ${a.purchase.id}`,
          );
        },
        error: (err) => {
          if (Array.isArray(err)) {
            const code = (err[0] as { extensions?: { code?: unknown } } | undefined)?.extensions?.code;
            if (code === 'UNAUTHENTICATED') {
              warn('the token expired: signing a new one and resuming');
              // The gateway closes the expired connection right after this error: the next
              // subscription opens a new one, with the new token.
              void mint().then((t) => {
                token = t;
                setTimeout(watch, RETRY_MIN_MS);
              });
              return;
            }
            if (code === 'CURSOR_EXPIRED') {
              warn('too long away to replay what was missed (list them with MyAlerts): watching from now');
              last = null;
              return watch();
            }
            warn(`subscription ended with an error: ${JSON.stringify(err)}`);
            return resolve(1);
          }
          // The connection dropped or could not be opened: subscribe again, resuming after `last`.
          failures += 1;
          const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1));
          warn(`connection lost (${err instanceof Error ? messageOf(err) : ((err as { code?: number }).code ?? 'closed')}); reconnecting in ${wait} ms`);
          setTimeout(watch, wait);
        },
        complete: () => resolve(0),
      },
    );
  };
  watch();
});

process.once('SIGINT', () => {
  void client.dispose();
  process.exit(0);
});
process.exit(await done);
