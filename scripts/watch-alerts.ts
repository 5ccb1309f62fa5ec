/**
 * npm run watch:alerts -- <handle> [gateway-url]: watches a seeded user's charge alerts live, over
 * graphql-ws through the gateway (the contract's ChargeAlerts subscription), one line per alert.
 *
 * The token is signed like `npm run token` (the HS256 secret, or PAYGRAPH_JWT_PRIVATE_KEY_FILE); the gateway
 * URL defaults to ws://127.0.0.1:<PORT>/graphql. Reconnects by itself if the gateway restarts.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { signToken } from '../lib/auth.js';
import { fail, messageOf, say, warn } from '../lib/cli.js';
import { issuerTokensMessage, loadConfig, mintingKey } from '../lib/config.js';
import { buildFixture } from '../seeds/fixture.js';

const CHARGE_ALERTS = `subscription ChargeAlerts {
  chargeAlertRaised {
    id
    riskScore
    reasons
    purchase { id amount { amount currency } merchant { id name country } }
    account { id }
    createdAt
  }
}`;

interface Raised {
  id: string;
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
const token = await signToken(key, user.id, 'payments', '12h', config.tokenVerifier);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}`, 'apollographql-client-name': 'watch-alerts' },
  retryAttempts: Infinity,
  shouldRetry: () => true,
  on: {
    connected: () => warn(`watching charge alerts of ${user.handle} (${user.id}) on ${url}; Ctrl-C to stop`),
    closed: (e) => {
      const code = (e as { code?: number }).code;
      if (code === 4401 || code === 4403) warn(`the gateway refused the connection (${code}): ${(e as { reason?: string }).reason ?? ''}`);
    },
  },
});

const done = new Promise<number>((resolve) => {
  client.subscribe<{ chargeAlertRaised: Raised }>(
    { query: CHARGE_ALERTS, operationName: 'ChargeAlerts' },
    {
      next: (result) => {
        if (result.errors) warn(`error: ${JSON.stringify(result.errors)}`);
        const a = result.data?.chargeAlertRaised;
        if (!a) return;
        const m = a.purchase.merchant;
        say(
          `${a.createdAt}  ALERT ${a.id}  risk ${a.riskScore}  ${a.reasons.join(',')}  ${a.purchase.amount.amount} ${a.purchase.amount.currency} at ${m.name} (${m.country}) on ${a.account.id}  purchase ${a.purchase.id}`,
        );
      },
      error: (err) => {
        warn(`subscription ended with an error: ${err instanceof Error ? messageOf(err) : JSON.stringify(err)}`);
        resolve(1);
      },
      complete: () => resolve(0),
    },
  );
});

process.once('SIGINT', () => {
  void client.dispose();
  process.exit(0);
});
process.exit(await done);
