/**
 * lib/transparency/checkpoint.ts: C2SP signed notes byte for byte as golang.org/x/mod/sumdb/note
 * makes them (its PeterNeumann example), verifier keys in its vkey form, tlog-checkpoint bodies.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkpointBody,
  openCheckpoint,
  openNote,
  parseCheckpointBody,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierKey,
} from '../../lib/transparency/checkpoint.js';

// golang.org/x/mod/sumdb/note's example: its signer key is base64(0x01 ‖ Ed25519 seed).
const GO_SKEY_SEED = Buffer.from('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz', 'base64').subarray(1);
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;
const goKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), GO_SKEY_SEED]), format: 'der', type: 'pkcs8' });

describe('signed notes and checkpoints (lib/transparency/checkpoint.ts)', () => {
  it('signs and verifies exactly as golang.org/x/mod/sumdb/note', () => {
    expect(verifierKey('PeterNeumann', goKey)).toBe(GO_VKEY);
    expect(signNote(GO_TEXT, 'PeterNeumann', goKey)).toBe(GO_NOTE);
    expect(openNote(GO_NOTE, parseVerifierKey(GO_VKEY))).toBe(GO_TEXT);
    expect(() => openNote(GO_NOTE.replace('cryptography', 'cryptographY'), parseVerifierKey(GO_VKEY))).toThrow(/bad signature by PeterNeumann/);
  });

  it('reads a verifier key whose base64 holds a "+" (transparency-dev/formats test key)', () => {
    expect(parseVerifierKey('TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6').name).toBe('TEST');
  });

  it('refuses malformed verifier keys and keys of another name', () => {
    expect(() => parseVerifierKey(GO_VKEY.replace('c74f20a3', 'c74f20a4'))).toThrow(/hash/);
    expect(() => parseVerifierKey(GO_VKEY.replace('ARpc', 'Arpc'))).toThrow();
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3')).toThrow();
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(() => openNote(GO_NOTE, parseVerifierKey(verifierKey('SomeoneElse', other)))).toThrow(/no signature by SomeoneElse/);
    // The same name with another key: the key hash differs, so no signature by that key.
    expect(() => openNote(GO_NOTE, parseVerifierKey(verifierKey('PeterNeumann', other)))).toThrow(/no signature/);
  });

  it('writes and reads tlog-checkpoint bodies', () => {
    const root = new Uint8Array(32).fill(7);
    const body = checkpointBody({ origin: 'paygraph.dev/audit/test', size: 42, root });
    expect(body).toBe(`paygraph.dev/audit/test\n42\n${Buffer.from(root).toString('base64')}\n`);
    expect(parseCheckpointBody(body)).toEqual({ origin: 'paygraph.dev/audit/test', size: 42, root });
    expect(() => parseCheckpointBody('o\n042\nAAAA\n')).toThrow(/size/);
    expect(() => parseCheckpointBody('o\n1\nAAAA\n')).toThrow(/root/);
    const key = generateKeyPairSync('ed25519').privateKey;
    const note = signCheckpoint({ origin: 'paygraph.dev/audit/test', size: 42, root }, key);
    const vkey = parseVerifierKey(verifierKey('paygraph.dev/audit/test', key));
    expect(openCheckpoint(note, vkey).size).toBe(42);
    expect(() => openCheckpoint(note.replace('\n42\n', '\n43\n'), vkey)).toThrow(/bad signature/);
  });
});
