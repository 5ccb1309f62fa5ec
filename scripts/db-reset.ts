/** npm run db:reset: deletes the SQLite files under the data directory and recreates them, migrated and seeded. */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import fs from 'node:fs';
import path from 'node:path';
import { say } from '../lib/cli.js';
import { loadConfig, SUBGRAPH_NAMES } from '../lib/config.js';
import { prepareDb } from '../runtime/database.js';

const { dataDir } = loadConfig();
for (const name of SUBGRAPH_NAMES) {
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(path.join(dataDir, `${name}.sqlite${suffix}`), { force: true });
  const { db } = await prepareDb(name, dataDir);
  await db.destroy();
  say(`${name}: ${path.join(dataDir, `${name}.sqlite`)} recreated, migrated and seeded`);
}
