/** npm run -s token -- <handle> <purpose>: prints a JWT for a seeded user, and nothing else. */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import { isPurpose, PURPOSES, signToken } from '../lib/auth.js';
import { fail, say } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';
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
say(await signToken(loadConfig().jwtSecret, user.id, purpose));
