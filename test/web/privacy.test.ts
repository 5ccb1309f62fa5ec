/**
 * The Privacy screen in a real browser (Debian's Chromium, playwright-core) against a stack on
 * port 0: revoking a consent turns that institution's accounts into "access revoked" (and
 * granting again, with the disclosure shown first, brings them back); every data-access record
 * carries a "verified in the public log" mark the page computes itself (signed checkpoint, subject
 * commitment, inclusion proof), which turns to "not verified" once the test rewrites the record's
 * leaf behind the service's back; a changed log key is a warning. Screenshots on failure.
 */
import type { Knex } from 'knex';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { isSqlite } from '../../lib/db.js';
import { launchChromium, newUserPage, requireChromiumOrSay, screenshotAll, signIn, startWebStack } from '../helpers/browser.js';
import { expectData } from '../helpers/matchers.js';
import { signToken } from '../../lib/auth.js';
import { TEST_JWT_SECRET, userId, type TestStack } from '../helpers/stack.js';

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

async function userPage(ctx: TestContext): Promise<Page> {
  const { context, page } = await newUserPage(browser);
  ctx.onTestFinished(async ({ task }) => {
    if (task.result?.state === 'fail') process.stderr.write(`screenshots: ${(await screenshotAll(task.name, [context])).join(', ')}\n`);
    await context.close();
  });
  return page;
}

interface DaveAccounts {
  me: { accounts: { id: string; institution: { id: string; name: string } }[] };
}

/** Lifts the append-only triggers of the log (as test/audit/tamper.test.ts does): what whoever runs the database can do. */
async function liftTriggers(db: Knex): Promise<void> {
  if (isSqlite(db)) for (const op of ['update', 'delete']) await db.raw(`DROP TRIGGER IF EXISTS data_access_log_no_${op}`);
  else await db.raw('ALTER TABLE data_access_log DISABLE TRIGGER ALL');
}

describe.skipIf(!RUN)('Privacy screen in Chromium', () => {
  it('revoking a consent shows that institution\'s accounts as "access revoked"; granting again, after the disclosure, brings them back', async (ctx) => {
    const page = await userPage(ctx);
    const dave = await stack.token('dave');
    const accounts = expectData(await stack.gql<DaveAccounts>('{ me { accounts { id institution { id name } } } }', {}, dave)).me.accounts;
    const bancorp = accounts.find((a) => a.institution.id === 'ins_us_bancorp')!;
    const other = accounts.find((a) => a.institution.id !== 'ins_us_bancorp')!;
    expect(bancorp && other).toBeTruthy();

    await signIn(page, stack.appUrl, 'Dave Okafor');
    // The seeds revoked dave's consent to U.S. Bancorp: its account is "access revoked", not an error; the other shows its balance.
    await expect.poll(() => page.getByTestId(`account-${bancorp.id}`).getByTestId('access').textContent()).toBe('Access revoked');
    await page.getByTestId(`account-${other.id}`).getByTestId('available').waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);

    // Revoke the other institution's consent, with a confirmation first.
    await page.getByRole('link', { name: 'Privacy' }).click();
    const row = page.getByTestId(`consent-${other.institution.id}`);
    await expect.poll(() => row.getByTestId('consent-status').textContent()).toBe('Access granted');
    await row.getByRole('button', { name: `Revoke access to ${other.institution.name}` }).click();
    const confirm = row.getByRole('group', { name: `Confirm revoking ${other.institution.name}` });
    await confirm.getByRole('button', { name: 'Yes, revoke access' }).click();
    await expect.poll(() => row.getByTestId('consent-status').textContent()).toBe('Access revoked');

    await page.getByRole('link', { name: 'Accounts' }).click();
    await expect.poll(() => page.getByTestId(`account-${other.id}`).getByTestId('access').textContent()).toBe('Access revoked');
    expect(await page.getByTestId(`account-${other.id}`).getByTestId('available').count()).toBe(0);

    // "Grant access again" from the account opens the grant form on Privacy, the disclosure text shown before the button.
    await page
      .getByRole('link', { name: `Grant access to ${bancorp.institution.name} again` })
      .first()
      .click();
    const form = page.getByRole('form', { name: `Grant access to ${bancorp.institution.name}` });
    const api = expectData(
      await stack.gql<{ consentDisclosure: { text: string } }>(
        'query ($i: ID!) { consentDisclosure(institutionId: $i) { text } }',
        { i: bancorp.institution.id },
        dave,
      ),
    );
    await expect.poll(() => form.getByTestId('disclosure').textContent()).toBe(api.consentDisclosure.text);
    expect(api.consentDisclosure.text.length).toBeGreaterThan(20);
    await form.getByRole('button', { name: 'I agree: grant access' }).click();
    await expect.poll(() => page.getByTestId(`consent-${bancorp.institution.id}`).getByTestId('consent-status').textContent()).toBe('Access granted');

    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByTestId(`account-${bancorp.id}`).getByTestId('available').waitFor();
    expect(await page.getByTestId(`account-${other.id}`).getByTestId('access').textContent()).toBe('Access revoked');
  });

  it('marks a record "verified in the public log", computed in the page; after its leaf is rewritten in the database, "not verified"', async (ctx) => {
    const page = await userPage(ctx);
    await signIn(page, stack.appUrl, 'Bob');
    await page.getByRole('link', { name: 'Privacy' }).click();
    await expect.poll(() => page.getByTestId('checkpoint').textContent()).toMatch(/signed checkpoint of \d+ entries/);
    // The seeds' consent records are old: all in the checkpoint, all verified; none fails.
    const verified = page.locator('[data-testid="mark"][data-state="verified"]');
    await expect.poll(() => verified.count()).toBeGreaterThan(2);
    expect(await page.locator('[data-testid="mark"][data-state="not-verified"]').count()).toBe(0);

    // A record newer than the checkpoint is "pending" until the next one: serve the page a
    // checkpoint taken before bob's next operation, then let it fetch the current one.
    const origin = new URL(stack.appUrl).origin;
    const stale = await (await fetch(`${origin}/audit/checkpoint`)).text();
    const staleSize = Number(stale.split('\n')[1]);
    // From a credential the token names, with a client name the caller merely declares.
    const fromIos = await signToken(TEST_JWT_SECRET, userId('bob'), 'payments', '1h', { clientId: 'messenger-ios' });
    await stack.gql('query BobReads { me { accounts { id } } }', {}, fromIos, { 'apollographql-client-name': 'declared-name' });
    await page.route('**/audit/checkpoint', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: stale }));
    await page.getByRole('button', { name: 'Check again' }).click();
    const bobReads = page.locator('tr[data-testid^="record-"]').filter({ hasText: 'BobReads' });
    await expect.poll(() => bobReads.getByTestId('mark').getAttribute('data-state')).toBe('pending');
    expect(Number(await bobReads.getAttribute('data-leaf-index'))).toBeGreaterThanOrEqual(staleSize);
    // The row names the verified credential; the declared name is only a hint.
    expect((await bobReads.getByTestId('credential').textContent())?.trim()).toBe('via messenger-ios');
    expect(await bobReads.getByTestId('credential').getAttribute('title')).toBe('declared client name: declared-name');
    await page.unroute('**/audit/checkpoint');
    await page.getByRole('button', { name: 'Check again' }).click();
    await expect.poll(() => bobReads.getByTestId('mark').getAttribute('data-state')).toBe('verified');

    // Pick a verified record and rewrite its leaf (a field the screen does not show, so only the proof can tell).
    const picked = page.locator('tr[data-testid^="record-"]').filter({ has: verified }).last();
    const index = Number(await picked.getAttribute('data-leaf-index'));
    // Pinned by its id: the filtered locator above would move to another row once this one fails.
    const target = page.getByTestId((await picked.getAttribute('data-testid'))!);
    const db = stack.adminDb('accounts');
    const row = (await db('data_access_log').where({ leaf_index: index }).first()) as { id: number; leaf: string };
    expect(row.leaf).toContain('"count":1');
    await liftTriggers(db);
    await db('data_access_log')
      .where({ id: row.id })
      .update({ leaf: row.leaf.replace('"count":1', '"count":2') });

    await page.getByRole('button', { name: 'Check again' }).click();
    const mark = target.getByTestId('mark');
    await expect.poll(() => mark.getAttribute('data-state')).toBe('not-verified');
    expect(await mark.textContent()).toBe('✗ not verified (not in the log)');
    // The others still verify against the same checkpoint.
    expect(await verified.count()).toBeGreaterThan(1);
  });

  it('warns when the log key differs from the one pinned on first use, and verifies nothing against it', async (ctx) => {
    const page = await userPage(ctx);
    await signIn(page, stack.appUrl, 'Carol');
    await page.getByRole('link', { name: 'Privacy' }).click();
    await page.locator('[data-testid="mark"][data-state="verified"]').first().waitFor();
    const pinned = await page.evaluate(() => localStorage.getItem('paygraph.audit.key'));
    expect(pinned).toBe((await (await fetch(new URL('/audit/key', stack.appUrl))).text()).trim());

    // Another key pinned (as if the log were re-keyed, or another log shown): a warning, no mark verified.
    await page.evaluate(() => localStorage.setItem('paygraph.audit.key', 'paygraph.dev/audit/other+01020304+AQ=='));
    await page.getByRole('button', { name: 'Check again' }).click();
    await page.getByTestId('key-changed').waitFor();
    await expect.poll(() => page.locator('[data-testid="mark"][data-state="verified"]').count()).toBe(0);
    expect(await page.locator('[data-testid="mark"][data-state="not-verified"]').first().textContent()).toBe('✗ not verified (the log key changed)');
  });
});
