/** Development secrets are generated per install (lib/dev-secrets.ts), never constants in the code. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../lib/config.js';
import { DEV_SECRETS_FILE } from '../../lib/dev-secrets.js';

const dirs: string[] = [];
const install = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-secrets-'));
  dirs.push(dir);
  return path.join(dir, 'data');
};
/** The HS256 secret the gateway verifies with (the default verifier). */
const jwtSecret = (c: Config) => (c.tokenVerifier.kind === 'secret' ? c.tokenVerifier.secret : undefined);
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

it('creates random secrets on first use, private to the owner, and every later process reads the same', () => {
  const dataDir = install();
  const first = loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
  expect(jwtSecret(first)!.length).toBeGreaterThanOrEqual(32);
  expect(fs.statSync(path.join(dataDir, DEV_SECRETS_FILE)).mode & 0o777).toBe(0o600);
  expect(fs.statSync(dataDir).mode & 0o077).toBe(0);
  const again = loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
  expect(jwtSecret(again)).toEqual(jwtSecret(first));
});

it('two installs get different secrets; configured ones win; production never falls back', () => {
  const a = loadConfig({ PAYGRAPH_DATA_DIR: install() });
  const b = loadConfig({ PAYGRAPH_DATA_DIR: install() });
  expect(jwtSecret(a)).not.toBe(jwtSecret(b));
  const set = loadConfig({ PAYGRAPH_DATA_DIR: install(), PAYGRAPH_JWT_SECRET: 'j'.repeat(40) });
  expect(jwtSecret(set)).toEqual('j'.repeat(40));
  const dataDir = install();
  expect(() => loadConfig({ NODE_ENV: 'production', PAYGRAPH_DATA_DIR: dataDir })).toThrow(/PAYGRAPH_JWT_SECRET/);
  expect(fs.existsSync(path.join(dataDir, DEV_SECRETS_FILE))).toBe(false);
});

it('reads a secrets file from before the service keys (its gatewaySecret is ignored)', () => {
  const dataDir = install();
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, DEV_SECRETS_FILE), JSON.stringify({ jwtSecret: 'j'.repeat(40), gatewaySecret: 'g'.repeat(40) }), { mode: 0o600 });
  const config = loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
  expect(jwtSecret(config)).toBe('j'.repeat(40));
  expect(JSON.stringify(config)).not.toContain('g'.repeat(40));
});

it('refuses a damaged secrets file instead of silently replacing it', () => {
  const dataDir = install();
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, DEV_SECRETS_FILE), '{"jwtSecret":"short"}');
  expect(() => loadConfig({ PAYGRAPH_DATA_DIR: dataDir })).toThrow(/not a paygraph development secrets file/);
});
