/**
 * Tokens verified with an issuer's public key (lib/auth.ts TokenVerifierConfig), through a real
 * gateway on both transports: an Ed25519 key (EdDSA), an RSA key (RS256) and a JWKS served from
 * loopback. A key-configured gateway refuses HS256 whatever the secret: nothing it holds mints.
 * Also the configuration (lib/config.ts) and `npm run token` with a key configured.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exportJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, publicKeyPems, type Purpose } from '../../lib/auth.js';
import { loadConfig } from '../../lib/config.js';
import { publicKeyPem, privateKeyPem } from '../../lib/transport/keys.js';
import { closeCode, subscribe } from '../helpers/alerts.js';
import { op } from '../helpers/contract.js';
import { expectData, expectGraphQLError } from '../helpers/matchers.js';
import { randomSecret, startTestStack, userId, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const ed = generateKeyPairSync('ed25519');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const AUDIENCE = 'paygraph-api';

interface Claims {
  iss?: string;
  aud?: string;
  sub?: string;
  purpose?: Purpose;
  kid?: string;
}

/** A token as an issuer would sign it: `alg` with `key` (a private key, or an HS256 secret). */
async function mint(alg: 'EdDSA' | 'RS256' | 'HS256', key: KeyObject | string, claims: Claims = {}): Promise<string> {
  const jwt = new SignJWT({ purpose: claims.purpose ?? 'payments' })
    .setProtectedHeader({ alg, ...(claims.kid ? { kid: claims.kid } : {}) })
    .setIssuer(claims.iss ?? 'paygraph')
    .setSubject(claims.sub ?? userId('alice'))
    .setIssuedAt()
    .setExpirationTime('10m');
  if (claims.aud) jwt.setAudience(claims.aud);
  return jwt.sign(typeof key === 'string' ? new TextEncoder().encode(key) : key);
}

async function acceptedOnHttp(stack: TestStack, token: string): Promise<void> {
  const res = await stack.gql<{ me: { id: string } }>('{ me { id } }', {}, token);
  expect(expectData(res).me.id).toBe(userId('alice'));
}

async function refusedOnHttp(stack: TestStack, token: string): Promise<void> {
  expectGraphQLError(await stack.gql('{ me { id } }', {}, token), 'UNAUTHENTICATED', { status: 401, noData: true });
}

async function acceptedOnWs(stack: TestStack, token: string): Promise<void> {
  const sub = subscribe(stack, token, op('ChargeAlerts'));
  try {
    await waitFor(() => stack.gateway.subscriptions.active === 1, 'the subscription is accepted');
  } finally {
    await sub.dispose();
  }
  await waitFor(() => stack.gateway.subscriptions.active === 0, 'the subscription ends');
}

async function refusedOnWs(stack: TestStack, token: string): Promise<void> {
  const sub = subscribe(stack, token, op('ChargeAlerts'));
  try {
    expect(closeCode(await sub.next())).toBe(4403);
  } finally {
    await sub.dispose();
  }
}

describe('a gateway verifying with an Ed25519 public key', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      logLevel: 'warn',
      tokenVerifier: { kind: 'public-key', publicKeys: [publicKeyPem(ed.publicKey)], issuer: 'paygraph', audience: AUDIENCE },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("accepts the issuer's EdDSA token on HTTP and on graphql-ws", async () => {
    const token = await mint('EdDSA', ed.privateKey, { aud: AUDIENCE });
    await acceptedOnHttp(stack, token);
    // Again: from the verified-token cache.
    await acceptedOnHttp(stack, token);
    await acceptedOnWs(stack, token);
  });

  it('refuses the same claims signed HS256, with any secret, and its own stack.token()', async () => {
    for (const token of [await mint('HS256', randomSecret('any'), { aud: AUDIENCE }), await stack.token('alice')]) {
      await refusedOnHttp(stack, token);
      await refusedOnWs(stack, token);
    }
  });

  it('refuses a token for another issuer, another audience or none, and one signed by another key', async () => {
    const other = generateKeyPairSync('ed25519');
    for (const token of [
      await mint('EdDSA', ed.privateKey, { iss: 'someone-else', aud: AUDIENCE }),
      await mint('EdDSA', ed.privateKey, { aud: 'another-api' }),
      await mint('EdDSA', ed.privateKey),
      await mint('EdDSA', other.privateKey, { aud: AUDIENCE }),
    ]) {
      await refusedOnHttp(stack, token);
      await refusedOnWs(stack, token);
    }
  });

  it('refuses an unsigned (alg none) token', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const none = `${b64({ alg: 'none' })}.${b64({ iss: 'paygraph', aud: AUDIENCE, sub: userId('alice'), purpose: 'payments', exp })}.`;
    await refusedOnHttp(stack, none);
  });
});

describe('a gateway verifying with an RSA public key', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ logLevel: 'warn', tokenVerifier: { kind: 'public-key', publicKeys: [publicKeyPem(rsa.publicKey)], issuer: 'paygraph' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('accepts RS256 and refuses EdDSA and HS256', async () => {
    const token = await mint('RS256', rsa.privateKey);
    await acceptedOnHttp(stack, token);
    await acceptedOnWs(stack, token);
    for (const refused of [await mint('EdDSA', ed.privateKey), await mint('HS256', randomSecret('any'))]) {
      await refusedOnHttp(stack, refused);
      await refusedOnWs(stack, refused);
    }
  });
});

describe('a gateway verifying with a JWKS', () => {
  let stack: TestStack;
  let jwksServer: http.Server;
  let fetches = 0;
  beforeAll(async () => {
    const keys = [
      { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    ];
    jwksServer = http.createServer((req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    const config = loadConfig({ PAYGRAPH_JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, PAYGRAPH_DATA_DIR: ':memory:' });
    expect(config.tokenVerifier).toMatchObject({ kind: 'jwks', issuer: 'paygraph' });
    stack = await startTestStack({ logLevel: 'warn', tokenVerifier: config.tokenVerifier });
  });
  afterAll(async () => {
    await stack?.stop();
    await new Promise<void>((resolve) => jwksServer?.close(() => resolve()));
  });

  it('accepts a token whose kid is in the JWKS (EdDSA and RS256), on both transports', async () => {
    const token = await mint('EdDSA', ed.privateKey, { kid: 'ed-1' });
    await acceptedOnHttp(stack, token);
    await acceptedOnWs(stack, token);
    await acceptedOnHttp(stack, await mint('RS256', rsa.privateKey, { kid: 'rsa-1' }));
    expect(fetches).toBeGreaterThanOrEqual(1);
  });

  it('refuses an unknown kid, a key not in the JWKS and HS256', async () => {
    const other = generateKeyPairSync('ed25519');
    for (const token of [
      await mint('EdDSA', other.privateKey, { kid: 'ed-1' }),
      await mint('EdDSA', ed.privateKey, { kid: 'unknown' }),
      await mint('HS256', randomSecret('any'), { kid: 'ed-1' }),
    ]) {
      await refusedOnHttp(stack, token);
    }
    await refusedOnWs(stack, await mint('HS256', randomSecret('any'), { kid: 'ed-1' }));
  });
});

describe('the verifier configuration', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-token-keys-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const edPem = publicKeyPem(ed.publicKey);

  it('reads a public key (PEM or file, several for a rotation), the issuer and the audience', async () => {
    const file = path.join(tmp(), 'issuer.pub');
    const next = generateKeyPairSync('ed25519');
    fs.writeFileSync(file, `${edPem}\n${publicKeyPem(next.publicKey)}`);
    const config = loadConfig({
      PAYGRAPH_JWT_PUBLIC_KEY_FILE: file,
      PAYGRAPH_JWT_ISSUER: 'https://id.example',
      PAYGRAPH_JWT_AUDIENCE: AUDIENCE,
      PAYGRAPH_DATA_DIR: tmp(),
    });
    expect(config.tokenVerifier).toMatchObject({ kind: 'public-key', issuer: 'https://id.example', audience: AUDIENCE });
    const verify = createTokenVerifier(config.tokenVerifier);
    for (const key of [ed.privateKey, next.privateKey])
      expect(await verify(await mint('EdDSA', key, { iss: 'https://id.example', aud: AUDIENCE }))).toEqual({
        userId: userId('alice'),
        purpose: 'payments',
        issuer: 'https://id.example',
        clientId: null,
      });
    expect(loadConfig({ PAYGRAPH_JWT_PUBLIC_KEY: edPem, NODE_ENV: 'production' }).tokenVerifier).toMatchObject({ kind: 'public-key', issuer: 'paygraph' });
    expect(publicKeyPems(edPem)).toHaveLength(1);
  });

  it('never mixes a secret with a key, and refuses what is not a public key', () => {
    expect(() => loadConfig({ PAYGRAPH_JWT_SECRET: randomSecret(), PAYGRAPH_JWT_PUBLIC_KEY: edPem })).toThrow(/never both/);
    expect(() => loadConfig({ PAYGRAPH_JWT_SECRET: randomSecret(), PAYGRAPH_JWT_JWKS_URL: 'https://id.example/jwks' })).toThrow(/never both/);
    expect(() => loadConfig({ PAYGRAPH_JWT_PUBLIC_KEY: edPem, PAYGRAPH_JWT_PUBLIC_KEY_FILE: '/x' })).toThrow(/not both/);
    expect(() => loadConfig({ PAYGRAPH_JWT_PUBLIC_KEY: privateKeyPem(ed.privateKey) })).toThrow(/private key/);
    expect(() => loadConfig({ PAYGRAPH_JWT_PUBLIC_KEY: 'not a key' })).toThrow(/PAYGRAPH_JWT_PUBLIC_KEY/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => loadConfig({ PAYGRAPH_JWT_PUBLIC_KEY: publicKeyPem(ec.publicKey) })).toThrow(/Ed25519 \(EdDSA\) or RSA \(RS256\)/);
    expect(() => loadConfig({ PAYGRAPH_JWT_JWKS_URL: 'ftp://id.example/jwks' })).toThrow(/http\(s\)/);
  });

  it('in production: one of the three must be set, a JWKS over https (or loopback), and no private key', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PAYGRAPH_JWT_SECRET, PAYGRAPH_JWT_PUBLIC_KEY\(_FILE\) or PAYGRAPH_JWT_JWKS_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_JWKS_URL: 'http://id.example/jwks' })).toThrow(/https/);
    expect(loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_JWKS_URL: 'https://id.example/jwks' }).tokenVerifier.kind).toBe('jwks');
    expect(() => loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_PUBLIC_KEY: edPem, PAYGRAPH_JWT_PRIVATE_KEY_FILE: '/x' })).toThrow(/development only/);
  });

  const ROOT = path.resolve(import.meta.dirname, '../..');
  const run = (args: string[], env: NodeJS.ProcessEnv) =>
    promisify(execFile)(path.join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, env: { ...process.env, NODE_ENV: 'development', ...env } });

  it('`npm run token` with a key configured explains that tokens come from the issuer (exit 2), or mints with a development private key', async () => {
    const dataDir = tmp();
    await expect(run(['scripts/token.ts', 'alice', 'payments'], { PAYGRAPH_DATA_DIR: dataDir, PAYGRAPH_JWT_PUBLIC_KEY: edPem })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('get tokens from that issuer'),
    });
    const keyFile = path.join(tmp(), 'issuer.key');
    fs.writeFileSync(keyFile, privateKeyPem(ed.privateKey), { mode: 0o600 });
    const { stdout } = await run(['scripts/token.ts', 'bob', 'advertising'], {
      PAYGRAPH_DATA_DIR: dataDir,
      PAYGRAPH_JWT_PUBLIC_KEY: edPem,
      PAYGRAPH_JWT_PRIVATE_KEY_FILE: keyFile,
    });
    const verify = createTokenVerifier({ kind: 'public-key', publicKeys: [edPem], issuer: 'paygraph' });
    expect(await verify(stdout.trim())).toEqual({ userId: 'usr_bob', purpose: 'advertising', issuer: 'paygraph', clientId: 'paygraph-cli' });
    // No development secret was created for a key-configured install.
    expect(fs.existsSync(path.join(dataDir, 'dev-secrets.json'))).toBe(false);
  });
});
