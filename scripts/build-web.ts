/**
 * npm run build:web: builds the reference web client (web/) into web/dist, which the gateway
 * serves at /app. Install runs it (`prepare`) and `npm start` runs it when web/dist is missing, so
 * a newcomer never has to.
 */
import { fail, messageOf, say } from '../lib/cli.js';
import { buildWebApp, WEB_DIST } from '../runtime/web-app.js';

try {
  await buildWebApp();
  say(`web app built into ${WEB_DIST}`);
} catch (err) {
  fail(`web app build failed: ${messageOf(err)}`, 1);
}
