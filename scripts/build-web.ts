/**
 * npm run build:web: builds the reference web client (web/) into web/dist, which the gateway
 * serves at /app. Install runs it (`prepare`) and `npm start` runs it when web/dist is missing, so
 * a newcomer never has to. An install without dev dependencies (no Vite) skips it with a warning
 * rather than failing the install: the API works without the app, and /app then says how to build it.
 */
import { fail, messageOf, say, warn } from '../lib/cli.js';
import { buildWebApp, viteMissing, WEB_DIST } from '../runtime/web-app.js';

try {
  await buildWebApp();
  say(`web app built into ${WEB_DIST}`);
} catch (err) {
  if (!viteMissing(err)) fail(`web app build failed: ${messageOf(err)}`, 1);
  warn('web app not built: Vite is not installed (an install without dev dependencies); `npm install` then `npm run build:web` builds it');
}
