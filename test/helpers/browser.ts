/**
 * Browser tests: Debian's Chromium (never a downloaded browser) driven by playwright-core, against
 * a test stack whose gateway serves the built web app (runtime/web-app.ts) with the development
 * sign-in. Chromium missing: the browser tests skip and say so, except under CI=true, where they
 * fail (.ci/run installs the `chromium` package; CI must never skip them).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { secretVerifier } from '../../lib/auth.js';
import { buildWebApp, stackWebApp, WEB_DIR, WEB_DIST } from '../../runtime/web-app.js';
import { startTestStack, TEST_JWT_SECRET, type TestStack } from './stack.js';

export const CHROMIUM = process.env.PAYGRAPH_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
/** Where failing browser tests leave their screenshots (git-ignored). */
export const SCREENSHOT_DIR = path.resolve('test-results', 'web');

/** Throws under CI when Chromium is missing; elsewhere says loudly that the browser tests are skipped. */
export function requireChromiumOrSay(): boolean {
  if (HAVE_CHROMIUM) return true;
  if (process.env.CI === 'true')
    throw new Error(`CI=true and no Chromium at ${CHROMIUM}: the browser tests must run in CI (.ci/run installs Debian's chromium package)`);
  process.stderr.write(`\n*** browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set PAYGRAPH_CHROMIUM) ***\n\n`);
  return false;
}

// Debian's Chromium as root in a container, headless, with nothing that phones home: this
// machine refuses every connection but loopback, and the tests must not depend on one.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--disable-default-apps',
  '--disable-extensions',
];

/** Chromium with a fresh profile (playwright-core gives every launch a new temporary user-data-dir, removed on close). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, chromiumSandbox: false });
}

/** The newest modification time under a folder (its build inputs). */
function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules') continue;
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

function webAppFresh(): boolean {
  const index = path.join(WEB_DIST, 'index.html');
  return fs.existsSync(index) && fs.statSync(index).mtimeMs >= newest(WEB_DIR);
}

/**
 * Builds web/ when web/dist is missing or older than its sources (install builds it; a test after
 * an edit rebuilds). Test files run in parallel processes: one builds, under a lock (a directory
 * outside web/, created atomically), and the others wait for it rather than empty web/dist under
 * a page being served.
 */
export async function ensureWebAppBuilt(): Promise<void> {
  if (webAppFresh()) return;
  const lock = path.join(os.tmpdir(), `paygraph-web-build-${createHash('sha256').update(WEB_DIR).digest('hex').slice(0, 12)}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // A lock older than any build is one a killed run left behind.
      if (Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 120_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`web build lock ${lock} held for 2 minutes`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (!webAppFresh()) await buildWebApp();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** A test stack that serves the app at /app, with the development sign-in minting HS256 test tokens. */
export async function startWebStack(): Promise<TestStack & { appUrl: string }> {
  await ensureWebAppBuilt();
  const stack = await startTestStack({
    webApp: stackWebApp({ production: false, mintingKey: TEST_JWT_SECRET, tokenVerifier: secretVerifier(TEST_JWT_SECRET) }),
  });
  return Object.assign(stack, { appUrl: stack.url.replace(/\/graphql$/, '/app/') });
}

/** A fresh browser context (its own storage: one user each), in en-US so that amounts read the same everywhere. */
export async function newUserPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  return { context, page };
}

/** Signs in on the app's sign-in screen as a seeded user (development sign-in). */
export async function signIn(page: Page, appUrl: string, name: string): Promise<void> {
  await page.goto(appUrl);
  await page.getByRole('button', { name: new RegExp(`^Sign in as ${name}`) }).click();
  await page.getByTestId('signed-in-as').filter({ hasText: name }).waitFor();
}

let shots = 0;

/** Screenshots of every open page of these contexts, named after the test (on failure). */
export async function screenshotAll(testName: string, contexts: readonly BrowserContext[]): Promise<string[]> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const slug = testName
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
  const files: string[] = [];
  for (const c of contexts)
    for (const p of c.pages()) {
      const file = path.join(SCREENSHOT_DIR, `${slug}-${++shots}.png`);
      await p.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      files.push(file);
    }
  return files;
}

/**
 * One module of web/src bundled for a page (Vite's library build, IIFE, kept in memory), so that a
 * test runs the app's own code in Chromium: `globalName` holds its exports on `window`.
 */
export async function bundleForBrowser(entry: string, globalName: string): Promise<string> {
  const { build } = await import('vite');
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    root: WEB_DIR,
    build: { write: false, minify: false, lib: { entry: path.join(WEB_DIR, entry), formats: ['iife'], name: globalName, fileName: 'bundle' } },
  });
  const outputs = (Array.isArray(out) ? out : [out]) as { output: { type: string; code?: string }[] }[];
  const chunk = outputs.flatMap((o) => o.output).find((c) => c.type === 'chunk');
  if (!chunk?.code) throw new Error(`no bundle for ${entry}`);
  return chunk.code;
}
