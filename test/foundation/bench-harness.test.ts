/**
 * The benchmark harness itself (bench/run.ts) runs end to end on tiny settings: every leg runs, every
 * ratio key of the issue is reported, the ledger verifies afterwards. No timing is asserted (the
 * numbers of a sub-second run on a shared machine mean nothing; performance lives in `npm run bench`).
 */
import { expect, it } from 'vitest';
import { drawCurves } from '../../bench/chart.js';
import { legsTable, markdown, runBench, settingsFromArgs, table } from '../../bench/run.js';

const KEYS = [
  'gateway_overhead_p50',
  'fence_overhead_p50',
  'sql_statements_n50_over_n5',
  'transfers_per_sec_gateway',
  'transfers_per_sec_ledger',
  'transfers_per_sec_ledger_better_sqlite3',
  'transfers_per_sec_ledger_sqlite3',
  'transfers_per_sec_sqlite_raw',
  'ledger_over_sqlite_limit',
  'gateway_over_peer_rps',
  'transfers_gateway_over_ledger',
  'alert_p99_ms_1_subscriber',
  'alert_p99_ms_100_subscribers',
  'alert_p99_100_over_1',
  'alerts_lost',
];

it('runs every leg on --tiny settings and reports every ratio key and raw leg', async () => {
  const settings = settingsFromArgs(['--tiny']);
  expect(settings.mode).toBe('tiny');
  const results = await runBench(settings, { quiet: true });
  for (const key of KEYS) {
    expect(results.ratios, key).toHaveProperty(key);
    expect(Number.isFinite(results.ratios[key]), key).toBe(true);
  }
  expect(Object.keys(results.legs)).toEqual(
    expect.arrayContaining([
      'gateway',
      'direct',
      'gateway_autocannon',
      'fence_on',
      'fence_off',
      'sql_statements',
      'transfers_gateway',
      'transfers_ledger_better_sqlite3',
      'transfers_ledger_sqlite3',
      'transfers_sqlite_raw',
      'peer_paygraph',
      'peer_hive',
      'ledger_after',
      'alerts',
    ]),
  );
  // Every request of the HTTP legs succeeded, and the ledger still balances after the transfer legs.
  for (const leg of [
    'gateway',
    'direct',
    'fence_on',
    'fence_off',
    'peer_paygraph',
    'peer_hive',
    'transfers_ledger_better_sqlite3',
    'transfers_ledger_sqlite3',
  ] as const)
    expect((results.legs[leg] as { errors: number }).errors, leg).toBe(0);
  expect(results.legs.ledger_after).toMatchObject({ verified: true });
  const md = markdown(results, 'npm run bench -- --tiny');
  for (const key of KEYS) expect(table(results)).toContain(`| ${key} |`);
  expect(legsTable(results)).toContain('| fence_off |');
  expect(md).toContain('```json');
}, 90_000);

it('runs the cost curves (--scale) on tiny settings: seeding, history, ledger vs callers, alerts vs subscribers, proofs vs log size, and draws the chart', async () => {
  const settings = settingsFromArgs(['--tiny', '--scale']);
  expect(settings.scale).toBe(true);
  const results = await runBench(settings, { quiet: true });
  for (const key of [
    'history_p50_100k_over_100',
    'alert_p99_ms_1000_subscribers',
    'gateway_heap_kib_per_idle_subscription',
    'alerts_lost_scale',
    'proof_p50_1m_over_1k',
  ])
    expect(Number.isFinite(results.ratios[key]), key).toBe(true);
  for (const leg of ['history_long', 'history_short'] as const) expect((results.legs[leg] as { errors: number }).errors, leg).toBe(0);
  expect(results.ratios.alerts_lost_scale).toBe(0);
  // The proof curve: both seeded logs (the seeder verifies a proof from each), timed proofs without errors, one point per size.
  expect((results.legs.proof_seed_100 as { size: number }).size).toBe(100);
  expect((results.legs.proof_seed_2000 as { size: number }).size).toBe(2_000);
  for (const leg of ['proof_2000', 'proof_100_beside_2000'] as const) expect((results.legs[leg] as { errors: number }).errors, leg).toBe(0);
  expect(results.curves?.find((c) => c.title.startsWith('Inclusion proof'))?.points.map((p) => p.x)).toEqual([100, 2_000]);
  expect(results.curves?.length).toBe(5);
  const png = await drawCurves(results.curves!, 'tiny');
  // A PNG: its signature, and more than an empty canvas.
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(png.length).toBeGreaterThan(5_000);
}, 90_000);
