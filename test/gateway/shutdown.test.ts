/**
 * Graceful shutdown: stopping the stack in the middle of a burst of transfers answers every request
 * it accepted in full, and leaves no half-written transaction: after a restart on the same files
 * the ledger verifies and holds exactly the transfers that were confirmed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { SUBGRAPH_NAMES } from '../../lib/config.js';
import { verifyLedger } from '../../subgraphs/payments/verify.js';
import { op } from '../helpers/contract.js';
import { startTestStack } from '../helpers/stack.js';
import { prepareDb } from '../../runtime/database.js';

it('finishes in-flight requests on stop and leaves the ledger whole', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-shutdown-'));
  try {
    const stack = await startTestStack({ dataDir, limits: { mutationsPerWindow: 1000 } });
    const alice = await stack.token('alice');
    const burst = Array.from({ length: 40 }, (_, i) =>
      stack
        .gql<{ sendTransfer: { transfer: { id: string } | null; userErrors: unknown[] } }>(
          op('SendMoney'),
          { input: { fromAccountId: 'acc_alice_checking', toHandle: 'bob', amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: `shutdown-${i}` } },
          alice,
        )
        .then((r) => ({ kind: 'answered' as const, r }))
        .catch((err: unknown) => ({ kind: 'refused' as const, err })),
    );
    // Let the first requests reach the gateway, then stop while the rest are in flight.
    await burst[0];
    const stopping = stack.stop();
    const outcomes = await Promise.all(burst);
    await stopping;

    const answered = outcomes.filter((o) => o.kind === 'answered');
    expect(answered.length).toBeGreaterThan(0);
    const confirmed = new Set<string>();
    for (const o of answered) {
      // An accepted request is answered in full: never a 5xx, never a truncated body.
      expect(o.r.status).toBe(200);
      expect(o.r.data?.sendTransfer.userErrors).toEqual([]);
      confirmed.add(o.r.data!.sendTransfer.transfer!.id);
    }
    for (const o of outcomes.filter((x) => x.kind === 'refused')) expect(String((o as { err: unknown }).err)).toMatch(/fetch failed|ECONNREFUSED|socket/i);

    // Restart on the same files: the ledger verifies and holds exactly the confirmed transfers.
    const { db } = await prepareDb('payments', dataDir);
    try {
      expect((await verifyLedger(db)).ok).toBe(true);
      const rows = (await db('transfers').select('id', 'entry_id')) as { id: string; entry_id: string }[];
      expect(new Set(rows.map((r) => r.id))).toEqual(confirmed);
      // ...each with its journal entry, and no journal entry without its transfer.
      const entries = (await db('journal_entries').where('kind', 'TRANSFER').whereNot('id', 'like', 'je_seed_%').select('id')) as { id: string }[];
      expect(new Set(entries.map((e) => e.id))).toEqual(new Set(rows.map((r) => r.entry_id)));
    } finally {
      await db.destroy();
    }
    for (const name of SUBGRAPH_NAMES) expect(fs.existsSync(path.join(dataDir, `${name}.sqlite`))).toBe(true);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
