/**
 * Each service's key pair is per install and per service (lib/transport/keys.ts): created on first
 * start in <data dir>/keys (0700, private keys 0600), never a constant; in production read from
 * PAYGRAPH_<SERVICE>_PRIVATE_KEY(_FILE) and PAYGRAPH_<PEER>_PUBLIC_KEY(_FILE), a missing one named;
 * every service handed its own private key and the public keys it verifies, nothing else.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, SERVICE_NAMES } from '../../lib/config.js';
import {
  derivedPublicKeyVariables,
  generateKeyRing,
  loadKeyRing,
  loadServiceKeys,
  privateKeyFile,
  privateKeyPem,
  publicKeyFile,
  publicKeyPem,
  serviceKeys,
} from '../../lib/transport/keys.js';
import { processEnv } from '../../runtime/cluster.js';
import { serveService } from '../../runtime/service.js';
import { signersTrustedBy } from '../../subgraphs/definition.js';
import { SUBGRAPHS } from '../../subgraphs/index.js';
import { randomSecret } from '../helpers/stack.js';

const dirs: string[] = [];
const install = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-keys-'));
  dirs.push(dir);
  return path.join(dir, 'data');
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const mode = (file: string) => fs.statSync(file).mode & 0o777;
const same = (a: { export(o: object): unknown }, b: { export(o: object): unknown }) =>
  expect(JSON.stringify(a.export({ format: 'jwk' }))).toBe(JSON.stringify(b.export({ format: 'jwk' })));

describe('development: the install key directory', () => {
  it('creates a key pair per service on first start, private to the owner, and reads the same ones later', () => {
    const dataDir = install();
    const { keys: source } = loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
    const payments = loadServiceKeys('payments', signersTrustedBy(SUBGRAPHS.payments), source);
    const dir = path.join(dataDir, 'keys');
    expect(mode(dir)).toBe(0o700);
    expect(mode(privateKeyFile(dir, 'payments'))).toBe(0o600);
    expect(fs.readFileSync(privateKeyFile(dir, 'payments'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(fs.readFileSync(publicKeyFile(dir, 'gateway'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    // Its own private key, and the public keys of the gateway and alerts (its routes' callers): nothing else.
    expect(payments.service).toBe('payments');
    expect(payments.self.type).toBe('private');
    expect(payments.self.asymmetricKeyType).toBe('ed25519');
    expect(Object.keys(payments.trust).sort()).toEqual(['alerts', 'gateway']);
    for (const k of Object.values(payments.trust)) expect(k!.type).toBe('public');
    // The same keys for every later process of this install, matching each other.
    const again = loadServiceKeys('payments', ['gateway'], loadConfig({ PAYGRAPH_DATA_DIR: dataDir }).keys);
    same(again.self, payments.self);
    const gateway = loadServiceKeys('gateway', [], source);
    expect(gateway.trust).toEqual({});
    same(createPublicKey(gateway.self), payments.trust.gateway!);
  });

  it('two installs, and two services of one install, never share a key', () => {
    const a = loadKeyRing(loadConfig({ PAYGRAPH_DATA_DIR: install() }).keys);
    const b = loadKeyRing(loadConfig({ PAYGRAPH_DATA_DIR: install() }).keys);
    const all = [...Object.values(a), ...Object.values(b)].map((k) => privateKeyPem(k));
    expect(new Set(all).size).toBe(2 * SERVICE_NAMES.length);
  });

  it('refuses a private key file others may read', () => {
    const dataDir = install();
    const { keys: source } = loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
    loadServiceKeys('ads', ['gateway'], source);
    fs.chmodSync(privateKeyFile(source.dir, 'ads'), 0o644);
    expect(() => loadServiceKeys('ads', ['gateway'], source)).toThrow(/readable by others \(mode 644\)/);
  });
});

describe('production: the environment', () => {
  const production = (env: Record<string, string> = {}) =>
    loadConfig({ NODE_ENV: 'production', PAYGRAPH_JWT_SECRET: randomSecret(), PAYGRAPH_DATA_DIR: install(), ...env });
  const ring = generateKeyRing();

  it('fails at start naming the missing variable, and writes nothing', async () => {
    const config = production();
    expect(() => loadServiceKeys('ads', ['gateway'], config.keys)).toThrow(/PAYGRAPH_ADS_PRIVATE_KEY \(or PAYGRAPH_ADS_PRIVATE_KEY_FILE\) must be set/);
    await expect(serveService('ads', config)).rejects.toThrow(/PAYGRAPH_ADS_PRIVATE_KEY/);
    await expect(serveService('gateway', config)).rejects.toThrow(/PAYGRAPH_GATEWAY_PRIVATE_KEY/);
    const withOwn = production({ PAYGRAPH_ADS_PRIVATE_KEY: privateKeyPem(ring.ads) });
    expect(() => loadServiceKeys('ads', ['gateway'], withOwn.keys)).toThrow(
      /PAYGRAPH_GATEWAY_PUBLIC_KEY .*the ads service verifies the gateway service's signatures/,
    );
    expect(fs.existsSync(config.keys.dir)).toBe(false);
    expect(fs.existsSync(withOwn.keys.dir)).toBe(false);
  });

  it('reads PEM from the variables or from the files they name', () => {
    const dir = path.dirname(install());
    fs.writeFileSync(path.join(dir, 'payments.pem'), privateKeyPem(ring.payments), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'alerts.pub'), publicKeyPem(createPublicKey(ring.alerts)));
    const config = production({
      PAYGRAPH_PAYMENTS_PRIVATE_KEY_FILE: path.join(dir, 'payments.pem'),
      PAYGRAPH_GATEWAY_PUBLIC_KEY: publicKeyPem(createPublicKey(ring.gateway)),
      PAYGRAPH_ALERTS_PUBLIC_KEY_FILE: path.join(dir, 'alerts.pub'),
    });
    const keys = loadServiceKeys('payments', ['gateway', 'alerts'], config.keys);
    same(keys.self, ring.payments);
    same(keys.trust.gateway!, createPublicKey(ring.gateway));
    same(keys.trust.alerts!, createPublicKey(ring.alerts));
  });

  it('refuses a private key where a public one belongs, and keys that are not Ed25519', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() =>
      loadServiceKeys(
        'ads',
        ['gateway'],
        production({ PAYGRAPH_ADS_PRIVATE_KEY: privateKeyPem(ring.ads), PAYGRAPH_GATEWAY_PUBLIC_KEY: privateKeyPem(ring.gateway) }).keys,
      ),
    ).toThrow(/PAYGRAPH_GATEWAY_PUBLIC_KEY holds a private key/);
    expect(() => loadServiceKeys('ads', [], production({ PAYGRAPH_ADS_PRIVATE_KEY: privateKeyPem(ec.privateKey) }).keys)).toThrow(/an ec key; .* Ed25519/);
    expect(() => loadServiceKeys('ads', [], production({ PAYGRAPH_ADS_PRIVATE_KEY: 'not a key' }).keys)).toThrow(
      /PAYGRAPH_ADS_PRIVATE_KEY: not a PEM private key/,
    );
  });
});

describe('each service is handed only its own private key', () => {
  it('from a key ring: its own private key and the public keys of the services it accepts', () => {
    const ring = generateKeyRing();
    const trusts = { accounts: ['gateway', 'payments'], payments: ['gateway', 'alerts'], merchants: ['gateway'], alerts: ['gateway'], ads: ['gateway'] };
    for (const name of Object.keys(trusts) as (keyof typeof trusts)[]) {
      expect(signersTrustedBy(SUBGRAPHS[name]).sort()).toEqual(trusts[name].sort());
      const keys = serviceKeys(ring, name, signersTrustedBy(SUBGRAPHS[name]));
      expect(keys.self).toBe(ring[name]);
      expect(Object.values(keys.trust).every((k) => k!.type === 'public')).toBe(true);
    }
  });

  it('by a cluster: every other service private key leaves a process environment; the public keys reach all', () => {
    const ring = generateKeyRing();
    const env: NodeJS.ProcessEnv = { KEEP: '1', PAYGRAPH_ADS_PRIVATE_KEY_FILE: '/run/secrets/ads' };
    for (const s of SERVICE_NAMES.filter((x) => x !== 'ads')) env[`PAYGRAPH_${s.toUpperCase()}_PRIVATE_KEY`] = privateKeyPem(ring[s]);
    const child = processEnv('payments', env);
    expect(Object.keys(child).filter((k) => k.includes('PRIVATE_KEY'))).toEqual(['PAYGRAPH_PAYMENTS_PRIVATE_KEY']);
    expect(child.KEEP).toBe('1');
    const publics = derivedPublicKeyVariables({ PAYGRAPH_GATEWAY_PRIVATE_KEY: privateKeyPem(ring.gateway) });
    expect(Object.keys(publics)).toEqual(['PAYGRAPH_GATEWAY_PUBLIC_KEY']);
    expect(publics.PAYGRAPH_GATEWAY_PUBLIC_KEY).toBe(publicKeyPem(createPublicKey(ring.gateway)));
  });
});
