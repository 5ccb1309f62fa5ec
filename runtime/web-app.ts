/**
 * The reference web client for a stack (gateway/web-app.ts): the built app under web/dist, built
 * first when missing (a fresh clone whose install skipped the build), and in development the
 * sign-in that lists the seeded users and mints their payments tokens with the same key as
 * `npm run -s token` (lib/config.ts mintingKey). Production gets the app and no sign-in routes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_CLIENT_IDS, signToken, type TokenSigningKey, type TokenVerifierConfig } from '../lib/auth.js';
import { mintingKey, type Config } from '../lib/config.js';
import { createWebApp, type DevSignIn, type WebAppHandler } from '../gateway/web-app.js';
import { buildFixture } from '../seeds/fixture.js';

/** The web client's folder in this checkout. */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');
export const WEB_DIST = path.join(WEB_DIR, 'dist');

/** Whether the app has been built (web/dist/index.html). */
export function webAppBuilt(distDir = WEB_DIST): boolean {
  return fs.existsSync(path.join(distDir, 'index.html'));
}

/** Builds web/ into web/dist with Vite (what `npm run build:web` and install's `prepare` run). */
export async function buildWebApp(): Promise<void> {
  // Loaded only here: the stack never needs Vite unless it has to build.
  const { build } = await import('vite');
  // Vite takes NODE_ENV from the environment when set, and a builder running under vitest has
  // NODE_ENV=test: that would ship React's and Apollo's development builds (and, with React's
  // production runtime forced in, a blank page). The build is always a production build.
  const before = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: path.join(WEB_DIR, 'vite.config.ts'), root: WEB_DIR, logLevel: 'warn', mode: 'production' });
  } finally {
    if (before === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = before;
  }
}

/** Whether a build failed because Vite is not installed (dev dependencies omitted). */
export function viteMissing(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && /'vite'/.test(e.message ?? '');
}

/** Development sign-in for the seeded users, minting with `key` for `verifier`. */
export function devSignIn(key: TokenSigningKey, verifier: TokenVerifierConfig): DevSignIn {
  const users = buildFixture().users;
  return {
    users: users.map((u) => ({ handle: u.handle, name: u.name })),
    async mint(handle) {
      const user = users.find((u) => u.handle === handle);
      return user ? signToken(key, user.id, 'payments', '12h', { ...verifier, clientId: DEV_CLIENT_IDS.web }) : null;
    },
  };
}

export interface StackWebAppOptions {
  production: boolean;
  /** The key `npm run token` mints with (null: tokens come from an issuer, so no dev sign-in). */
  mintingKey: TokenSigningKey | null;
  tokenVerifier: TokenVerifierConfig;
  distDir?: string;
}

export function stackWebApp(o: StackWebAppOptions): WebAppHandler {
  return createWebApp({
    distDir: o.distDir ?? WEB_DIST,
    production: o.production,
    devSignIn: !o.production && o.mintingKey !== null ? devSignIn(o.mintingKey, o.tokenVerifier) : undefined,
  });
}

/**
 * What `npm start` serves: the app, and the development sign-in unless NODE_ENV=production (even
 * though a production HS256 secret could mint: production tokens come from the app's identity
 * provider, never from a route).
 */
export function stackWebAppFor(config: Config, distDir?: string): WebAppHandler {
  return stackWebApp({
    production: config.production,
    mintingKey: config.production ? null : mintingKey(config),
    tokenVerifier: config.tokenVerifier,
    distDir,
  });
}
