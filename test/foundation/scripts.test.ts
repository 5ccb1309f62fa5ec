/** The command-line scripts behave as the README says. */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { verifyToken } from '../../lib/auth.js';
import { loadConfig } from '../../lib/config.js';
import { BLOCKED_MARK } from '../../lib/egress-guard.mjs';
import { loadServiceKeys } from '../../lib/transport/keys.js';
import { randomSecret } from '../helpers/stack.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
/**
 * Runs a script from the repository root, whatever the working directory of the test run. The tsx
 * CLI and the node it starts are both guarded: they inherit the egress guard in NODE_OPTIONS.
 */
const run = (args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) => promisify(execFile)(TSX, args, { cwd: ROOT, ...opts });

it("token prints only a JWT for a seeded user and purpose, signed with this install's secret", async () => {
  // A data dir of its own: the install's development secrets are created there, not in the checkout.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-token-'));
  try {
    const { stdout, stderr } = await run(['scripts/token.ts', 'bob', 'advertising'], {
      env: { ...process.env, NODE_ENV: 'development', PAYGRAPH_DATA_DIR: dataDir },
    });
    expect(stderr).not.toContain(BLOCKED_MARK);
    const token = stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(await verifyToken(loadConfig({ PAYGRAPH_DATA_DIR: dataDir }).tokenVerifier, token)).toEqual({
      userId: 'usr_bob',
      purpose: 'advertising',
      issuer: 'paygraph',
      clientId: 'paygraph-cli',
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

it('token refuses an unknown handle or purpose with a usage message', async () => {
  await expect(run(['scripts/token.ts', 'mallory', 'payments'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage') });
  await expect(run(['scripts/token.ts', 'alice', 'marketing'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('purpose') });
});

it("token --institution prints a bank's oversight credential; an unknown institution, another purpose or a user's oversight token is refused", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-token-'));
  try {
    const env = { ...process.env, NODE_ENV: 'development', PAYGRAPH_DATA_DIR: dataDir };
    const { stdout } = await run(['scripts/token.ts', '--institution', 'ins_chase', 'oversight'], { env });
    expect(await verifyToken(loadConfig({ PAYGRAPH_DATA_DIR: dataDir }).tokenVerifier, stdout.trim())).toEqual({
      userId: 'institution:ins_chase',
      purpose: 'oversight',
      institutionId: 'ins_chase',
      issuer: 'paygraph',
      clientId: 'paygraph-cli',
    });
    await expect(run(['scripts/token.ts', '--institution', 'ins_nope', 'oversight'], { env })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
    await expect(run(['scripts/token.ts', '--institution', 'ins_chase', 'payments'], { env })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('oversight'),
    });
    await expect(run(['scripts/token.ts', 'alice', 'oversight'], { env })).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--institution') });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

it('config refuses dev secrets in production', () => {
  expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PAYGRAPH_JWT_SECRET/);
  // Service keys are read when a service starts, each only its own: a missing one stops it, named.
  const config = loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_SECRET: randomSecret() });
  expect(() => loadServiceKeys('payments', ['gateway', 'alerts'], config.keys)).toThrow(/PAYGRAPH_PAYMENTS_PRIVATE_KEY/);
});

it('a subgraph process needs no JWT secret, and reads none', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-nojwt-'));
  try {
    const config = loadConfig({ NODE_ENV: 'production', PAYGRAPH_DATA_DIR: dataDir }, { tokens: false });
    expect(() => config.tokenVerifier).toThrow(/only the gateway/);
    // Not even the install's development secret: nothing written to the data directory.
    expect(() => loadConfig({ PAYGRAPH_DATA_DIR: dataDir }, { tokens: false }).tokenVerifier).toThrow(/only the gateway/);
    expect(fs.readdirSync(dataDir)).toEqual([]);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
