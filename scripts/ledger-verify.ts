/**
 * npm run ledger:verify: checks the payments ledger under PAYGRAPH_DATA_DIR (default ./data), or
 * in the `payments` schema on PostgreSQL (as the payments service's role: PAYGRAPH_PAYMENTS_DATABASE_URL, or derived from
 * DATABASE_URL, docs/database-roles.md): every cached balance equals the sum of its postings, every
 * journal entry sums to zero per currency. Prints what it checked; exits 1 on any mismatch, 2 when there is no database.
 */
// First: no telemetry, before anything loads @apollo/gateway (lib/no-egress.ts).
import '../lib/no-egress.js';
import fs from 'node:fs';
import path from 'node:path';
import { say, fail, messageOf } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';
import { openDb } from '../lib/db.js';
import { serviceDatabaseUrl } from '../runtime/database.js';
import { formatVerification, verifyLedger } from '../subgraphs/payments/verify.js';

const config = loadConfig();
const { dataDir } = config;
let databaseUrl: string | undefined;
try {
  // The payments service's own role: it may read the ledger, and that is all this needs.
  databaseUrl = serviceDatabaseUrl('payments', config);
} catch (err) {
  fail(`ledger:verify: ${messageOf(err)}`, 2);
}
const file = path.join(dataDir, 'payments.sqlite');
let db;
if (databaseUrl) {
  db = openDb({ postgresUrl: databaseUrl, schema: 'payments', createSchema: false });
  say(`Verifying the payments ledger in PostgreSQL (schema payments)`);
} else {
  if (!fs.existsSync(file)) fail(`No payments database at ${file}; run \`npm start\` or \`npm run db:reset\` first (or set PAYGRAPH_DATA_DIR).`, 2);
  db = openDb({ sqliteFile: file });
  say(`Verifying the payments ledger in ${file}`);
}
try {
  const result = await verifyLedger(db);
  say(formatVerification(result));
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await db.destroy();
}
