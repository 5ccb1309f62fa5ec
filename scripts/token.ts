/**
 * npm run -s token -- <handle> <purpose>: prints a JWT for a seeded user, and nothing else.
 * npm run -s token -- --institution <id> oversight: a bank's oversight credential (purpose
 * `oversight`, an `institution` claim) for a seeded institution (docs/consent.md).
 * Signed HS256 with the gateway's secret (the dev stack), or with PAYGRAPH_JWT_PRIVATE_KEY_FILE
 * when the gateway verifies with an issuer's public key; without that file it explains (exit 2).
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { DEV_CLIENT_IDS, isPurpose, PURPOSES, signInstitutionToken, signToken } from '../lib/auth.js';
import { fail, say } from '../lib/cli.js';
import { issuerTokensMessage, loadConfig, mintingKey } from '../lib/config.js';
import { buildFixture } from '../seeds/fixture.js';

const args = process.argv.slice(2);
const fixture = buildFixture();
const usage = `usage: npm run -s token -- <handle> [purpose]\n       npm run -s token -- --institution <id> oversight\n  handle: one of ${fixture.users.map((u) => u.handle).join(', ')}\n  purpose: ${PURPOSES.filter((p) => p !== 'oversight').join(' | ')} (default payments)\n  institution: one of ${fixture.institutions.map((i) => i.id).join(', ')}`;

if (args[0] === '--institution') {
  const [, institutionId, purpose = 'oversight'] = args;
  if (!fixture.institutions.some((i) => i.id === institutionId)) fail(usage, 2);
  if (purpose !== 'oversight') fail(`an institution's credential has purpose "oversight", got "${purpose}"`, 2);
  const config = loadConfig();
  const key = mintingKey(config);
  if (key === null) fail(issuerTokensMessage(config), 2);
  say(await signInstitutionToken(key, institutionId!, '12h', { ...config.tokenVerifier, clientId: DEV_CLIENT_IDS.cli }));
} else {
  const [handle, purpose = 'payments'] = args;
  const user = fixture.users.find((u) => u.handle === handle);
  if (!user) fail(usage, 2);
  if (!isPurpose(purpose) || purpose === 'oversight') fail(`purpose must be one of payments, advertising, got "${purpose}" (oversight: --institution <id>)`, 2);
  const config = loadConfig();
  // HS256 with the secret the gateway verifies with; with an issuer's key, only a development private key can mint.
  const key = mintingKey(config);
  if (key === null) fail(issuerTokensMessage(config), 2);
  say(await signToken(key, user.id, purpose, '12h', { ...config.tokenVerifier, clientId: DEV_CLIENT_IDS.cli }));
}
