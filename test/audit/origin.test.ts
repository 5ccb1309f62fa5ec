/**
 * The log's origin as configured (PAYGRAPH_AUDIT_ORIGIN): the first line of every checkpoint and
 * the name of the verifier key, checked at start like every setting (C2SP: schema-less, no spaces
 * or "+"), and what a witness pins; unset, `paygraph.dev/audit/<install id>`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAuditOrigin, loadConfig } from '../../lib/config.js';
import { openCheckpoint, parseVerifierKey } from '../../lib/transparency/checkpoint.js';
import { runWitness } from '../../lib/transparency/witness.js';
import { isolatedEnv } from '../../runtime/stack.js';
import { startTestStack, TEST_KEYS, type TestStack } from '../helpers/stack.js';

const ORIGIN = 'audit.paygraph.example/prod-eu';
let stack: TestStack;
let dir: string;

beforeAll(async () => {
  stack = await startTestStack({ auditOrigin: ORIGIN });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygraph-origin-'));
});
afterAll(async () => {
  await stack?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the configured origin', () => {
  it('names the checkpoints and the verifier key, and the witness pins it', async () => {
    const base = new URL(stack.url).origin;
    const vkey = (await (await fetch(`${base}/audit/key`)).text()).trim();
    expect(vkey.split('+')[0]).toBe(ORIGIN);
    const note = await (await fetch(`${base}/audit/checkpoint`)).text();
    expect(note.split('\n')[0]).toBe(ORIGIN);
    expect(openCheckpoint(note, parseVerifierKey(vkey)).origin).toBe(ORIGIN);
    const state = path.join(dir, 'witness.json');
    const first = await runWitness({ url: base, statePath: state });
    expect(first).toMatchObject({ ok: true, message: expect.stringMatching(new RegExp(`^OK ${ORIGIN.replace(/\./g, '\\.')}: `)) });
    expect(JSON.parse(fs.readFileSync(state, 'utf8')).key).toBe(vkey);
  });

  it('is read from PAYGRAPH_AUDIT_ORIGIN and refused at start when C2SP would not accept it', () => {
    expect(loadConfig({ PAYGRAPH_DATA_DIR: dir }, { tokens: false }).auditOrigin).toBeUndefined();
    expect(loadConfig({ PAYGRAPH_DATA_DIR: dir, PAYGRAPH_AUDIT_ORIGIN: ORIGIN }, { tokens: false }).auditOrigin).toBe(ORIGIN);
    for (const bad of ['https://audit.example/x', 'audit example', 'a+b.example', 'é.example', 'x'.repeat(256)])
      expect(() => checkAuditOrigin(bad), bad).toThrow(/PAYGRAPH_AUDIT_ORIGIN/);
    expect(() => loadConfig({ PAYGRAPH_DATA_DIR: dir, PAYGRAPH_AUDIT_ORIGIN: 'https://audit.example' }, { tokens: false })).toThrow(
      /schema-less.*audit\.example/,
    );
  });

  it('is handed to an accounts process of its own, and to no other service', () => {
    const base = { keys: TEST_KEYS, host: '127.0.0.1', production: false, subgraphUrls: stack.subgraphUrls, auditOrigin: ORIGIN, from: {} };
    expect(isolatedEnv({ ...base, name: 'accounts' }).PAYGRAPH_AUDIT_ORIGIN).toBe(ORIGIN);
    expect(isolatedEnv({ ...base, name: 'ads' }).PAYGRAPH_AUDIT_ORIGIN).toBeUndefined();
  });
});
