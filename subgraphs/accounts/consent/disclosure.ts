/**
 * The authorization disclosure a user agrees to (12 CFR 1033.411 asks what it must say): who
 * receives the data, which data, for what purpose, for how long, and how to revoke. One version
 * is published at a time; a grant must name it (rules.ts).
 */
import { MAX_CONSENT_DAYS } from './rules.js';

/** The version of the text below; change it with every change of the text. */
export const DISCLOSURE_VERSION = '2026-12-01';

export function disclosureText(institutionName: string): string {
  return [
    `paygraph, the payments service of this app, asks for your permission to receive data from ${institutionName} about the accounts you linked there.`,
    'What: only the scopes you choose: account details (name and last four digits), balances, transaction history, and the ability to move money (transfers and purchases) from those accounts.',
    'Why: only to provide the payments features you asked for: showing your balances and history, sending money and paying merchants, and fraud alerts. It is never used for advertising, never sold, and never used for anything else.',
    `For how long: for the number of days you choose, at most ${MAX_CONSENT_DAYS} days (one year). After that paygraph stops using the data until you consent again.`,
    'How to stop: revoke your consent at any time in the app (revokeConsent); it takes effect for everything paygraph does after you revoke. Charge alerts on your cards keep reaching you: they protect you against fraud.',
    `${institutionName} can see that you gave or revoked this consent, under a pseudonym, and which accesses were made to your accounts.`,
  ].join('\n\n');
}
