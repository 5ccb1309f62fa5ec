/**
 * Development secrets, generated once per install: the first start (or `npm run token`) writes
 * random secrets to `<data dir>/dev-secrets.json` (mode 0600), and every later process of this
 * install reads the same file. No secret is ever a constant in the code, and production never
 * comes here (lib/config.ts requires the real ones there). The services' signing keys are not
 * secrets of the install but of each service: lib/transport/keys.ts keeps them, one file each.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface DevSecrets {
  jwtSecret: string;
}

export const DEV_SECRETS_FILE = 'dev-secrets.json';

function read(file: string): DevSecrets | null {
  try {
    // (A file written before the services had key pairs also holds a `gatewaySecret`: nothing reads it any more.)
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DevSecrets>;
    if (typeof v.jwtSecret === 'string' && v.jwtSecret.length >= 32) return { jwtSecret: v.jwtSecret };
    throw new Error(`${file} is not a paygraph development secrets file; delete it to generate new secrets`);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/** This install's development secrets, created on first use (safe when several processes race). */
export function devSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, DEV_SECRETS_FILE);
  const existing = read(file);
  if (existing) return existing;
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const fresh: DevSecrets = { jwtSecret: randomBytes(32).toString('base64url') };
  try {
    // `wx`: only the first of several processes starting together writes; the others read its file.
    fs.writeFileSync(file, `${JSON.stringify(fresh, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
    return fresh;
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
    return read(file)!;
  }
}
