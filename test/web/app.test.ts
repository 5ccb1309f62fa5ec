/**
 * The reference web client in a real browser (Debian's Chromium, playwright-core) against a whole
 * stack on port 0 whose gateway serves the app at /app: signing in, balances, sending money and
 * seeing it arrive in the recipient's open history, and a suspicious purchase's live alert,
 * answered "Not me", after which the frozen card is refused. A failing test leaves screenshots of
 * every page in test-results/web/.
 */
import type { Browser, BrowserContext, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { formatMoney } from '../../web/src/money.js';
import { pay, SUSPICIOUS, waitForLive } from '../helpers/alerts.js';
import { bundleForBrowser, launchChromium, newUserPage, requireChromiumOrSay, screenshotAll, signIn, startWebStack } from '../helpers/browser.js';
import { auditPath, ed25519, leafOf, mth, signedNote, vkeyOf } from '../helpers/transparency.js';
import { op } from '../helpers/contract.js';
import { expectData } from '../helpers/matchers.js';
import type { TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const RUN = requireChromiumOrSay();

let stack: TestStack & { appUrl: string };
let browser: Browser;

beforeAll(async () => {
  if (!RUN) return;
  [stack, browser] = await Promise.all([startWebStack(), launchChromium()]);
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A fresh context for one user, closed at the end of the test; screenshots of it if the test fails. */
async function userPage(ctx: TestContext) {
  return (await userContext(ctx)).page;
}
async function userContext(ctx: TestContext) {
  const { context, page } = await newUserPage(browser);
  ctx.onTestFinished(async ({ task }) => {
    if (task.result?.state === 'fail') process.stderr.write(`screenshots: ${(await screenshotAll(task.name, [context])).join(', ')}\n`);
    await context.close();
  });
  return { context, page };
}

interface Balances {
  me: { accounts: { id: string; balance: { available: { amount: string; currency: string }; current: { amount: string; currency: string } } }[] };
}

describe.skipIf(!RUN)('web app in Chromium', () => {
  it('signs in as alice: every account with its institution, mask and exact balances; history newest first, scrolled to a second page', async (ctx) => {
    const page = await userPage(ctx);
    await signIn(page, stack.appUrl, 'Alice Johnson');
    const api = expectData(await stack.gql<Balances>(op('MyBalances'), {}, await stack.token('alice'))).me.accounts;
    expect(api.length).toBeGreaterThan(1);
    for (const a of api) {
      const card = page.getByTestId(`account-${a.id}`);
      await expect.poll(() => card.getByTestId('available').textContent()).toBe(formatMoney(a.balance.available.amount, a.balance.available.currency, 'en-US'));
      expect(await card.getByTestId('current').textContent()).toBe(formatMoney(a.balance.current.amount, a.balance.current.currency, 'en-US'));
      expect(await card.textContent()).toMatch(/•••• \d{4}/);
    }
    // Keyboard: a tab is a link that Enter follows...
    await page.getByRole('link', { name: 'History' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'History' }).waitFor();
    // ...and focus lands on the new screen, not on the tab left behind.
    await expect.poll(() => page.evaluate('document.activeElement && document.activeElement.id')).toBe('main');

    // History: newest first, 20 a page, the next page loaded when the end scrolls into view.
    const rows = page.getByTestId('tx');
    await expect.poll(() => rows.count()).toBe(20);
    await rows.last().scrollIntoViewIfNeeded();
    await page.getByRole('button', { name: 'Load more' }).scrollIntoViewIfNeeded();
    await expect.poll(() => rows.count()).toBe(40);
    const times = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-posted-at') ?? ''));
    expect(times).toEqual([...times].sort().reverse());
    expect(new Set(await rows.evaluateAll((els) => els.map((e) => e.textContent))).size).toBeGreaterThan(1);
  });

  it('sends 12.50 to bob, who sees it in his open history in another browser context; a user error shows by its field', async (ctx) => {
    const [alice, bob] = [await userPage(ctx), await userPage(ctx)];
    await Promise.all([signIn(alice, stack.appUrl, 'Alice Johnson'), signIn(bob, stack.appUrl, 'Bob')]);
    await bob.getByRole('link', { name: 'History' }).click();
    await bob.getByTestId('tx').first().waitFor();
    const fromAliceInBob = bob.getByTestId('tx').filter({ hasText: 'From Alice Johnson (@alice)' }).filter({ hasText: '+$12.50' });
    expect(await fromAliceInBob.count()).toBe(0);

    await alice.getByRole('link', { name: 'Send money' }).click();
    // A user error from the API, next to the field it names.
    await alice.getByLabel('To (handle)').fill('nobody-here');
    await alice.getByLabel('Amount (USD)').fill('12.50');
    await alice.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => alice.getByTestId('toHandle-error').textContent()).toMatch(/\S/);

    await alice.getByLabel('To (handle)').fill('bob');
    await alice.getByLabel('Note (optional)').fill('lunch');
    await alice.getByRole('button', { name: 'Send' }).click();
    await alice.getByRole('status').filter({ hasText: 'Sent $12.50 to @bob.' }).waitFor();

    // Bob's open history picks it up without a reload; alice's shows it too.
    await fromAliceInBob.first().waitFor({ timeout: 15_000 });
    await alice.getByRole('link', { name: 'History' }).click();
    await alice.getByTestId('tx').filter({ hasText: 'To Bob' }).filter({ hasText: '−$12.50' }).first().waitFor();
  });

  it('a suspicious purchase raises a live toast; "Not me" freezes the card and the next purchase is refused', async (ctx) => {
    const page = await userPage(ctx);
    await signIn(page, stack.appUrl, 'Carol');
    await waitForLive(stack, 1);
    await page.getByRole('link', { name: 'Pay' }).click();
    await page.getByLabel('Merchant').selectOption('mer_air_france');
    await page.getByLabel('Pay with').selectOption('acc_carol_card');
    await page.getByLabel('Amount (USD)').fill('1200.00');
    await page.getByLabel(/Card present/).uncheck();
    await page.getByRole('button', { name: 'Pay' }).click();

    const toast = page.getByTestId('alert-toast').filter({ hasText: 'Air France' });
    await toast.waitFor({ timeout: 15_000 });
    expect(await toast.getByRole('heading').textContent()).toBe('Is this you? $1,200.00 at Air France');
    expect(Number(await toast.getByTestId('risk-score').textContent())).toBeGreaterThan(0);
    expect(await toast.getByRole('list', { name: 'Why we flagged it' }).getByRole('listitem').count()).toBeGreaterThan(0);
    await toast.getByRole('button', { name: 'Not me, freeze my card' }).click();
    await toast.getByRole('status').filter({ hasText: 'Card frozen' }).waitFor();

    await page.getByLabel('Merchant').selectOption('mer_blue_bottle');
    await page.getByLabel('Amount (USD)').fill('4.50');
    await page.getByLabel(/Card present/).check();
    await page.getByRole('button', { name: 'Pay' }).click();
    await expect.poll(() => page.getByTestId('accountId-error').textContent()).toBe('This account or card is frozen and cannot be used for purchases.');
  });

  it("verifies a record's inclusion and its checkpoint's Ed25519 signature in the page itself (WebCrypto in Chromium)", async (ctx) => {
    const page = await userPage(ctx);
    await page.goto(stack.appUrl);
    // The app's own verifier (web/src/verify/record.ts), run in the app's origin.
    await page.evaluate(await bundleForBrowser('src/verify/record.ts', 'paygraphVerify'));
    const leaves = Array.from({ length: 11 }, (_, i) => leafOf(i));
    const key = ed25519();
    const note = signedNote(`paygraph.test/audit\n11\n${mth(leaves).toString('base64')}\n`, 'paygraph-audit', key.privateKey, key.raw);
    const input = {
      leaf: [...leaves[6]!],
      index: '6',
      proof: auditPath(6, leaves).map((p) => [...p]),
      checkpoint: note,
      verifierKey: vkeyOf('paygraph-audit', key.raw),
    };
    const verdict = (i: typeof input) =>
      page.evaluate(async (i) => {
        const v = (window as unknown as { paygraphVerify: typeof import('../../web/src/verify/record.js') }).paygraphVerify;
        const r = await v.verifyRecord({ ...i, leaf: Uint8Array.from(i.leaf), index: BigInt(i.index), proof: i.proof.map((p) => Uint8Array.from(p)) });
        return r.verified ? 'verified' : r.reason;
      }, i);
    expect(await verdict(input)).toBe('verified');
    expect(await verdict({ ...input, leaf: [...Buffer.from('record-6, edited')] })).toBe('not in the log');
    expect(await verdict({ ...input, checkpoint: note.replace('\n11\n', '\n12\n') })).toBe('bad signature');
  });

  it('reconnects after the socket drops, and the alert raised while it was down shows once, resumed by cursor', async (ctx) => {
    const { context, page } = await userContext(ctx);
    const link = await droppableSockets(context);
    const { status, toasts, live } = await signedInLive(page, 'Alice Johnson');
    const alice = await stack.token('alice');

    // An alert while connected: the app now holds its cursor.
    expect((await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS })).userErrors).toEqual([]);
    await toasts.first().waitFor({ timeout: 15_000 });
    expect(await toasts.count()).toBe(1);

    // Down (every socket closed, reconnections refused); an alert raised meanwhile.
    await link.drop();
    await expect.poll(() => status.textContent()).not.toBe('Live');
    await waitFor(() => stack.gateway.subscriptions.live <= live, 'the page subscription gone');
    expect((await pay(stack, alice, { accountId: 'acc_alice_card', ...SUSPICIOUS, amount: '1250.00' })).userErrors).toEqual([]);

    // Up: graphql-ws reconnects by itself, the app subscribes after its cursor, the missed alert is replayed.
    link.restore();
    await toasts.filter({ hasText: '$1,250.00' }).waitFor({ timeout: 30_000 });
    await expect.poll(() => status.textContent()).toBe('Live');
    await waitForLive(stack, live + 1);
    // Once each: the replay after the cursor does not repeat the first, nor the second twice.
    expect(await toasts.filter({ hasText: '$1,250.00' }).count()).toBe(1);
    expect(await toasts.filter({ hasText: '$1,200.00' }).count()).toBe(1);
    expect(await toasts.count()).toBe(2);
  }, 60_000);

  it('with no alert received before the drop, the alert raised while offline still shows once, and live ones follow', async (ctx) => {
    // bob: no alert yet, so the app has no cursor; purchases from his checking account (his card's credit is nearly used).
    const { context, page } = await userContext(ctx);
    const link = await droppableSockets(context);
    const { status, toasts, live } = await signedInLive(page, 'Bob');
    const bob = await stack.token('bob');

    await link.drop();
    await expect.poll(() => status.textContent()).not.toBe('Live');
    await waitFor(() => stack.gateway.subscriptions.live <= live, 'the page subscription gone');
    const made = await pay(stack, bob, { accountId: 'acc_bob_checking', ...SUSPICIOUS });
    expect(made.userErrors).toEqual([]);

    link.restore();
    await toasts.filter({ hasText: '$1,200.00' }).waitFor({ timeout: 30_000 });
    await expect.poll(() => status.textContent()).toBe('Live');
    await waitForLive(stack, live + 1);
    expect((await pay(stack, bob, { accountId: 'acc_bob_checking', ...SUSPICIOUS, amount: '1300.00' })).userErrors).toEqual([]);
    await toasts.filter({ hasText: '$1,300.00' }).waitFor({ timeout: 15_000 });
    expect(await toasts.filter({ hasText: '$1,200.00' }).count()).toBe(1);
    expect(await toasts.count()).toBe(2);
  }, 60_000);
});

/**
 * Every WebSocket of a context goes through the test (Playwright's routeWebSocket), which can drop
 * them all and refuse new ones for a while, as a gateway restart or a lost network does to a tab.
 */
async function droppableSockets(context: BrowserContext): Promise<{ drop(): Promise<void>; restore(): void }> {
  let down = false;
  const servers: WebSocketRoute[] = [];
  await context.routeWebSocket(/\/graphql$/, (ws) => {
    if (down) return void ws.close({ code: 1012, reason: 'service restart' });
    servers.push(ws.connectToServer());
  });
  return {
    async drop() {
      down = true;
      // Closing the server side closes the page's side too. (That side is a browser WebSocket,
      // whose close() takes only 1000 or 3000-4999: graphql-ws retries after 1000.)
      for (const server of servers.splice(0)) await server.close({ code: 1000, reason: 'going away' });
    },
    restore() {
      down = false;
    },
  };
}

/** Signs in and waits until the page's alert subscription is live on the gateway. */
async function signedInLive(page: Page, name: string) {
  const status = page.getByRole('status', { name: /^Alerts connection/ });
  const live = stack.gateway.subscriptions.live;
  await signIn(page, stack.appUrl, name);
  await expect.poll(() => status.textContent()).toBe('Live');
  await waitForLive(stack, live + 1);
  return { status, toasts: page.getByTestId('alert-toast'), live };
}
