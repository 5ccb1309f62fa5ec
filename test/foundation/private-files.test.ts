/**
 * Data files are private (lib/db.ts, lib/dev-secrets.ts): a stack started on a fresh data directory
 * creates it 0700 and every file in it 0600, each subgraph's SQLite database and the -wal and -shm
 * files SQLite creates beside it, and the development secrets; under the most permissive umask, so
 * the modes come from paygraph, not from the environment.
 */
import { generateKeyRing } from '../../lib/transport/keys.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig, SUBGRAPH_NAMES } from '../../lib/config.js';
import { openDb } from '../../lib/db.js';
import { DEV_SECRETS_FILE } from '../../lib/dev-secrets.js';
import { startStack } from '../../runtime/stack.js';
import { randomSecret } from '../helpers/stack.js';

const roots: string[] = [];
let umask: number | undefined;

beforeAll(() => {
  // process.umask(mask) is refused in worker threads; vitest runs test files in forks.
  if (isMainThread) umask = process.umask(0o000);
});

afterAll(() => {
  if (umask !== undefined) process.umask(umask);
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function freshRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-private-'));
  roots.push(root);
  return root;
}

/** Every entry of `dir` with its permission bits, e.g. { 'payments.sqlite': '600' }. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(fs.readdirSync(dir).map((name) => [name, (fs.statSync(path.join(dir, name)).mode & 0o777).toString(8)]));
}

const octal = (mode: number) => (mode & 0o777).toString(8);

it('a stack on a fresh data directory creates it 0700 and every file in it 0600', async () => {
  const dataDir = path.join(freshRoot(), 'data');
  const stack = await startStack({ dataDir, port: 0, host: '127.0.0.1', jwtSecret: randomSecret(), keys: generateKeyRing() });
  let running: Record<string, string>;
  try {
    // Migrations and seeds have written every database, and its WAL, by now.
    running = modes(dataDir);
  } finally {
    await stack.stop();
  }
  expect(octal(fs.statSync(dataDir).mode)).toBe('700');
  for (const name of SUBGRAPH_NAMES)
    for (const file of [`${name}.sqlite`, `${name}.sqlite-wal`, `${name}.sqlite-shm`]) expect(running, file).toHaveProperty(file);
  expect(Object.entries(running).filter(([, mode]) => mode !== '600')).toEqual([]);

  // After the stop, and with the development secrets written beside the databases (npm start).
  loadConfig({ PAYGRAPH_DATA_DIR: dataDir });
  const stopped = modes(dataDir);
  expect(stopped).toHaveProperty(DEV_SECRETS_FILE);
  expect(Object.entries(stopped).filter(([, mode]) => mode !== '600')).toEqual([]);
  expect(octal(fs.statSync(dataDir).mode)).toBe('700');
});

it('narrows a database file and its sidecars that exist with a wider mode', async () => {
  const dir = freshRoot();
  const file = path.join(dir, 'old.sqlite');
  fs.writeFileSync(file, '', { mode: 0o644 });
  fs.writeFileSync(`${file}-journal`, '', { mode: 0o664 });
  expect(octal(fs.statSync(file).mode)).toBe('644');
  const db = openDb({ sqliteFile: file });
  try {
    expect(modes(dir)).toEqual({ 'old.sqlite': '600', 'old.sqlite-journal': '600' });
    await db.raw('CREATE TABLE t (x INTEGER)');
    expect(Object.entries(modes(dir)).filter(([, mode]) => mode !== '600')).toEqual([]);
  } finally {
    await db.destroy();
  }
});
