/**
 * npm run -s token -- <handle> <purpose>: prints a JWT for a seeded user, and nothing else.
 * Signed HS256 with the gateway's secret (the dev stack), or with PAYGRAPH_JWT_PRIVATE_KEY_FILE
 * when the gateway verifies with an issuer's public key; without that file it explains (exit 2).
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { isPurpose, PURPOSES, signToken } from '../lib/auth.js';
import { fail, say } from '../lib/cli.js';
import { issuerTokensMessage, loadConfig, mintingKey } from '../lib/config.js';
import { buildFixture } from '../seeds/fixture.js';

const [handle, purpose = 'payments'] = process.argv.slice(2);
const users = buildFixture().users;
const user = users.find((u) => u.handle === handle);
if (!user)
  fail(
    `usage: npm run -s token -- <handle> [purpose]\n  handle: one of ${users.map((u) => u.handle).join(', ')}\n  purpose: ${PURPOSES.join(' | ')} (default payments)`,
    2,
  );
if (!isPurpose(purpose)) fail(`purpose must be one of ${PURPOSES.join(', ')}, got "${purpose}"`, 2);
const config = loadConfig();
// HS256 with the secret the gateway verifies with; with an issuer's key, only a development private key can mint.
const key = mintingKey(config);
if (key === null) fail(issuerTokensMessage(config), 2);
say(await signToken(key, user.id, purpose, '12h', config.tokenVerifier));
