/** npm run -s token -- <handle> <purpose>: prints a JWT for a seeded user, and nothing else. */
import { loadConfig } from '../lib/config.js';
import { signToken, isPurpose, PURPOSES } from '../lib/auth.js';
import { buildFixture } from '../seeds/fixture.js';

const [handle, purpose = 'payments'] = process.argv.slice(2);
const users = buildFixture().users;
const user = users.find((u) => u.handle === handle);
if (!user) {
  console.error(`usage: npm run -s token -- <handle> [purpose]\n  handle: one of ${users.map((u) => u.handle).join(', ')}\n  purpose: ${PURPOSES.join(' | ')} (default payments)`);
  process.exit(2);
}
if (!isPurpose(purpose)) {
  console.error(`purpose must be one of ${PURPOSES.join(', ')}, got "${purpose}"`);
  process.exit(2);
}
console.log(await signToken(loadConfig().jwtSecret, user.id, purpose));
