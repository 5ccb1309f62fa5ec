/**
 * The services' signing keys: one Ed25519 key pair per service (the gateway and each subgraph),
 * per install. A service signs what it sends with its own private key and verifies what it
 * receives against the public keys of the services it accepts, so it is handed exactly that:
 * `ServiceKeys` = its own private key + the public keys it verifies. No process derives, or
 * holds, another service's private key: a compromised ads process can sign only as ads, which
 * no payments-zone endpoint accepts (signing.ts, docs/fence.md "Service signatures").
 *
 * Where the keys come from (lib/config.ts Config.keys):
 *
 * - production (NODE_ENV=production): the service's own private key from
 *   PAYGRAPH_<SERVICE>_PRIVATE_KEY (PKCS#8 PEM) or PAYGRAPH_<SERVICE>_PRIVATE_KEY_FILE, each
 *   trusted peer's public key from PAYGRAPH_<PEER>_PUBLIC_KEY (SPKI PEM) or
 *   PAYGRAPH_<PEER>_PUBLIC_KEY_FILE. A missing one stops the service at start, naming the variable.
 * - development: the same variables when set, else the install's key directory
 *   (`<data dir>/keys`, mode 0700): `<service>.ed25519` (the private key, PKCS#8 PEM, mode 0600)
 *   and `<service>.ed25519.pub` (its public key, SPKI PEM), created on first start by whichever
 *   process of the install needs one first (`start:cluster` creates them all before its processes
 *   start). Every key is random and per install: none is committed, none is a constant. (On one
 *   machine every file belongs to one user: in development this separates what each service is
 *   handed, not what the operating system lets it read.)
 *
 * The in-process stack (`npm start`, the tests) runs every service, so it holds a `KeyRing` (every
 * service's private key) and hands each service only its own `ServiceKeys` (serviceKeys below).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES, type KeySource, type ServiceName } from '../config.js';

/** What one service holds: its own private key and the public keys of the services it accepts. */
export interface ServiceKeys {
  /** Whose keys these are: the `keyid` of every signature made with `self`. */
  readonly service: ServiceName;
  /** The service's own private key (Ed25519). It never leaves the service. */
  readonly self: KeyObject;
  /** The public keys of the services whose signatures this one verifies, and no others. */
  readonly trust: Readonly<Partial<Record<ServiceName, KeyObject>>>;
}

/** What signing needs: who signs, with which private key. */
export type Signer = Pick<ServiceKeys, 'service' | 'self'>;

/** Every service's private key: held only by whoever runs every service in one process (runtime/stack.ts, tests). */
export type KeyRing = Readonly<Record<ServiceName, KeyObject>>;

export const privateKeyVariable = (service: ServiceName): string => `PAYGRAPH_${service.toUpperCase()}_PRIVATE_KEY`;
export const publicKeyVariable = (service: ServiceName): string => `PAYGRAPH_${service.toUpperCase()}_PUBLIC_KEY`;
export const privateKeyFile = (dir: string, service: ServiceName): string => path.join(dir, `${service}.ed25519`);
export const publicKeyFile = (dir: string, service: ServiceName): string => path.join(dir, `${service}.ed25519.pub`);

export const privateKeyPem = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();
export const publicKeyPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();

function requireEd25519(key: KeyObject, where: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${where}: an ${key.asymmetricKeyType ?? 'unknown'} key; paygraph's service keys are Ed25519`);
  return key;
}

export function parsePrivateKey(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${where}: not a PEM private key (${(err as Error).message})`, { cause: err });
  }
  return requireEd25519(key, where);
}

export function parsePublicKey(pem: string, where: string): KeyObject {
  // createPublicKey would accept a private key too (and derive its public half): refused, so that
  // a private key put where only a public one belongs is noticed instead of silently spread.
  if (/PRIVATE KEY/.test(pem)) throw new Error(`${where} holds a private key; give it the public key only (SPKI PEM)`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`${where}: not a PEM public key (${(err as Error).message})`, { cause: err });
  }
  return requireEd25519(key, where);
}

/** A fresh key ring: a new key pair for every service (tests: one per test process, never constants). */
export function generateKeyRing(): KeyRing {
  return Object.fromEntries(SERVICE_NAMES.map((s) => [s, generateKeyPairSync('ed25519').privateKey])) as KeyRing;
}

/** The keys one service of a ring is handed: its own private key and the public keys of `trusts`. */
export function serviceKeys(ring: KeyRing, service: ServiceName, trusts: readonly ServiceName[]): ServiceKeys {
  const trust: Partial<Record<ServiceName, KeyObject>> = {};
  for (const peer of trusts) trust[peer] = createPublicKey(ring[peer]);
  return { service, self: ring[service], trust };
}

/** PEM text from `<name>` or the file named by `<name>_FILE`; undefined when neither is set. */
function fromEnvironment(env: KeySource['env'], name: string): { pem: string; where: string } | undefined {
  const value = env[name];
  if (value !== undefined && value.length > 0) return { pem: value, where: name };
  const file = env[`${name}_FILE`];
  if (file === undefined || file.length === 0) return undefined;
  try {
    return { pem: fs.readFileSync(file, 'utf8'), where: `${name}_FILE (${file})` };
  } catch (err) {
    throw new Error(`${name}_FILE: cannot read ${file} (${(err as Error).message})`, { cause: err });
  }
}

function missing(name: string, why: string): Error {
  return new Error(`${name} (or ${name}_FILE) must be set when NODE_ENV=production: ${why}`);
}

/**
 * Writes `content` to `file` only if no such file exists, atomically: through a temporary file
 * hard-linked into place, so that a process starting at the same moment sees either no file or
 * the whole of one (never half a key), and exactly one of them wins.
 */
function createOnce(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, content, { flag: 'wx', mode });
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  } finally {
    fs.unlinkSync(tmp);
  }
}

function exists(file: string): boolean {
  return fs.existsSync(file);
}

/**
 * Makes sure the development key directory holds a key pair for `service`, creating it on first
 * use: the private key (0600) in a directory only this user can enter (0700), then its public
 * key beside it, derived from it.
 */
export function ensureDevKeyPair(dir: string, service: ServiceName): void {
  const priv = privateKeyFile(dir, service);
  const pub = publicKeyFile(dir, service);
  if (exists(priv) && exists(pub)) return;
  if (!exists(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // (mkdir's mode is filtered by the umask)
  }
  if (!exists(priv)) createOnce(priv, privateKeyPem(generateKeyPairSync('ed25519').privateKey), 0o600);
  // Whoever created the private key, its public half is written from it.
  if (!exists(pub)) createOnce(pub, publicKeyPem(createPublicKey(readDevPrivateKey(dir, service))), 0o644);
}

/** Every service's development key pair, created where missing (before a cluster's processes start). */
export function ensureDevKeys(dir: string, services: readonly ServiceName[] = SERVICE_NAMES): void {
  for (const s of services) ensureDevKeyPair(dir, s);
}

function readDevPrivateKey(dir: string, service: ServiceName): KeyObject {
  const file = privateKeyFile(dir, service);
  // Like ssh: a private key others may read is no longer only this service's.
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new Error(`${file} is readable by others (mode ${mode.toString(8)}); chmod 600 it, or delete it to generate a new key`);
  return parsePrivateKey(fs.readFileSync(file, 'utf8'), file);
}

/** One service's own private key, from where `source` says (see the header). */
export function loadPrivateKey(service: ServiceName, source: KeySource): KeyObject {
  const name = privateKeyVariable(service);
  const given = fromEnvironment(source.env, name);
  if (given) return parsePrivateKey(given.pem, given.where);
  if (source.production) throw missing(name, `the ${service} service signs with its own private key (PKCS#8 PEM)`);
  ensureDevKeyPair(source.dir, service);
  return readDevPrivateKey(source.dir, service);
}

/** The public key of `peer` that `service` verifies, from where `source` says (see the header). */
export function loadPublicKey(peer: ServiceName, service: ServiceName, source: KeySource): KeyObject {
  const name = publicKeyVariable(peer);
  const given = fromEnvironment(source.env, name);
  if (given) return parsePublicKey(given.pem, given.where);
  if (source.production) throw missing(name, `the ${service} service verifies the ${peer} service's signatures (SPKI PEM)`);
  ensureDevKeyPair(source.dir, peer);
  const file = publicKeyFile(source.dir, peer);
  return parsePublicKey(fs.readFileSync(file, 'utf8'), file);
}

/** Whether `env` gives `service`'s private key (PAYGRAPH_<SERVICE>_PRIVATE_KEY or its _FILE). */
export function givesPrivateKey(env: KeySource['env'], service: ServiceName): boolean {
  const name = privateKeyVariable(service);
  return Boolean(env[name] || env[`${name}_FILE`]);
}

/**
 * PAYGRAPH_<SERVICE>_PUBLIC_KEY for every service whose private key `env` gives and whose public
 * key it does not: what a supervisor holding the private keys (runtime/cluster.ts) passes on, so
 * that its processes can verify one another without being given each other's private keys.
 */
export function derivedPublicKeyVariables(env: KeySource['env']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const service of SERVICE_NAMES) {
    const pub = publicKeyVariable(service);
    if (!givesPrivateKey(env, service) || env[pub] || env[`${pub}_FILE`]) continue;
    out[pub] = publicKeyPem(createPublicKey(loadPrivateKey(service, { production: true, dir: '', env })));
  }
  return out;
}

/** What one service process is handed: its own private key and the public keys of `trusts` (runtime/service.ts). */
export function loadServiceKeys(service: ServiceName, trusts: readonly ServiceName[], source: KeySource): ServiceKeys {
  const self = loadPrivateKey(service, source);
  const trust: Partial<Record<ServiceName, KeyObject>> = {};
  for (const peer of trusts) trust[peer] = loadPublicKey(peer, service, source);
  return { service, self, trust };
}

/** Every service's private key, for a process that runs them all (runtime/stack.ts via `npm start`). */
export function loadKeyRing(source: KeySource): KeyRing {
  return Object.fromEntries(SERVICE_NAMES.map((s) => [s, loadPrivateKey(s, source)])) as KeyRing;
}
