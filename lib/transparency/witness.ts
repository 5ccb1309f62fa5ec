/**
 * The witness a bank runs (`npm run -s audit:verify`, scripts/audit-verify.ts): it keeps the last
 * checkpoint it verified and checks that every new one extends it, so that whatever was in the
 * log at a checkpoint it has seen can no longer change unnoticed.
 *
 * One run: fetch the checkpoint (GET /audit/checkpoint), verify its signature with the pinned key
 * (the first run pins GET /audit/key and stores the checkpoint), verify the RFC 6962 consistency
 * proof from the stored checkpoint to the new one, and with `entries` re-hash every leaf
 * (GET /audit/entries) and compare with the root, and with the leaf hashes it stored the last
 * time (kept beside the state file, 32 bytes a leaf), so that a changed, removed or reordered
 * record is named by its index. The state is written only after a run verified everything.
 */
import fs from 'node:fs';
import { openCheckpoint, parseVerifierKey, type Checkpoint } from './checkpoint.js';
import { equalHashes, leafHash, rootOfLeaves, verifyConsistency, type Hash } from './merkle.js';

export interface WitnessOptions {
  /** The gateway's origin, e.g. http://127.0.0.1:4000. */
  url: string;
  /** The state file (created on the first run). */
  statePath: string;
  /** Re-hash every entry. */
  entries?: boolean;
}

export interface WitnessResult {
  ok: boolean;
  /** One line: the summary, or the first inconsistency. */
  message: string;
}

interface WitnessState {
  url: string;
  /** The pinned verifier key. */
  key: string;
  /** The last verified checkpoint, as signed. */
  checkpoint: string;
  /** How many leaf hashes the leaves file holds (verified with `entries`). */
  leaves?: number;
}

const ENTRIES_PAGE = 1_000;

class Inconsistency extends Error {}

const unb64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));
const leavesPath = (statePath: string) => `${statePath}.leaves`;

/** How many times one read waits out a 429 (the log's per-address read budget) before giving up. */
const MAX_RATE_LIMITED_RETRIES = 20;

async function get(base: string, path: string): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(new URL(path, base));
    // A witness reading a large log may spend its read budget (docs/audit.md): it waits as told.
    if (res.status === 429 && attempt < MAX_RATE_LIMITED_RETRIES) {
      await res.arrayBuffer();
      const seconds = Math.min(60, Math.max(1, Number(res.headers.get('retry-after')) || 1));
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      continue;
    }
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return res;
  }
}

const getText = async (base: string, path: string) => (await get(base, path)).text();
const getJson = async <T>(base: string, path: string) => (await (await get(base, path)).json()) as T;

function readState(path: string): WitnessState | null {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
  return JSON.parse(text) as WitnessState;
}

function writeState(path: string, state: WitnessState, leaves: Hash[] | null): void {
  if (leaves) {
    fs.writeFileSync(`${leavesPath(path)}.tmp`, Buffer.concat(leaves));
    fs.renameSync(`${leavesPath(path)}.tmp`, leavesPath(path));
  }
  fs.writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(`${path}.tmp`, path);
}

function storedLeaves(statePath: string, count: number): Hash[] {
  const raw = fs.readFileSync(leavesPath(statePath));
  if (raw.length !== count * 32) throw new Error(`${leavesPath(statePath)} holds ${raw.length / 32} leaf hashes, the state says ${count}`);
  return Array.from({ length: count }, (_, i) => new Uint8Array(raw.subarray(i * 32, (i + 1) * 32)));
}

async function consistencyHashes(base: string, from: number, to: number): Promise<Hash[]> {
  return (await getJson<{ hashes: string[] }>(base, `/audit/proof/consistency?from=${from}&to=${to}`)).hashes.map(unb64);
}

/** Every leaf of the tree of `size`, re-hashed from its entry; an entry at a wrong index is a mismatch there. */
async function rehashEntries(base: string, size: number): Promise<Hash[]> {
  const out: Hash[] = [];
  for (let start = 0; start < size; start += ENTRIES_PAGE) {
    const end = Math.min(size, start + ENTRIES_PAGE);
    const { entries } = await getJson<{ entries: { index: number; leaf: string }[] }>(base, `/audit/entries?start=${start}&end=${end}`);
    for (let i = start; i < end; i++) {
      const e = entries[i - start];
      if (!e || e.index !== i) throw new Inconsistency(`leaf mismatch at index ${i}: the log serves ${e ? `index ${e.index}` : 'no entry'} there`);
      out.push(leafHash(new TextEncoder().encode(e.leaf)));
    }
  }
  return out;
}

/**
 * The first index whose entry is not the leaf the signed root `cp` commits to: the largest prefix
 * of `leaves` that the log proves consistent with `cp` (binary search over consistency proofs,
 * which only the true prefix can pass), from `known` (a prefix already verified) on.
 */
async function firstBadLeaf(base: string, leaves: Hash[], cp: Checkpoint, known: number): Promise<number> {
  let good = known;
  let bad = cp.size;
  while (bad - good > 1) {
    const k = Math.floor((good + bad) / 2);
    const proof = await consistencyHashes(base, k, cp.size).catch(() => null);
    if (proof && verifyConsistency(k, cp.size, rootOfLeaves(leaves.slice(0, k)), cp.root, proof)) good = k;
    else bad = k;
  }
  return good;
}

export async function runWitness(opts: WitnessOptions): Promise<WitnessResult> {
  const state = readState(opts.statePath);
  const base = opts.url;
  try {
    const key = state?.key ?? (await getText(base, '/audit/key')).trim();
    const vkey = parseVerifierKey(key);
    const note = await getText(base, '/audit/checkpoint');
    let cp: Checkpoint;
    try {
      cp = openCheckpoint(note, vkey);
    } catch (err) {
      throw new Inconsistency(`bad signature: the checkpoint does not verify with the pinned key ${key} (${(err as Error).message})`);
    }
    if (cp.origin !== vkey.name) throw new Inconsistency(`bad signature: the checkpoint's origin ${cp.origin} is not the pinned key's ${vkey.name}`);
    const old = state ? openCheckpoint(state.checkpoint, vkey) : null;
    if (old && cp.size < old.size) throw new Inconsistency(`inconsistent tree: the log shrank from ${old.size} to ${cp.size} leaves`);
    // With the entries, first what changed among the leaves verified before: that names the index.
    let leaves: Hash[] | null = null;
    let previous: Hash[] = [];
    if (opts.entries) {
      leaves = await rehashEntries(base, cp.size);
      previous = state?.leaves ? storedLeaves(opts.statePath, Math.min(state.leaves, cp.size)) : [];
      const changed = previous.findIndex((h, i) => !equalHashes(h, leaves![i]!));
      if (changed >= 0) throw new Inconsistency(`leaf mismatch at index ${changed}: its entry is not the leaf verified before`);
    }
    if (old) {
      const proof = cp.size > old.size ? await consistencyHashes(base, old.size, cp.size) : [];
      if (!verifyConsistency(old.size, cp.size, old.root, cp.root, proof))
        throw new Inconsistency(`inconsistent tree: the checkpoint of ${cp.size} leaves does not extend the stored one of ${old.size}`);
    }
    if (leaves && !equalHashes(rootOfLeaves(leaves), cp.root))
      throw new Inconsistency(
        `leaf mismatch at index ${await firstBadLeaf(base, leaves, cp, previous.length)}: the entries do not hash to the checkpoint's root`,
      );
    // Leaf hashes verified before stay the tree's first leaves: the consistency proof showed it.
    const kept = leaves ? leaves.length : state?.leaves;
    writeState(opts.statePath, { url: base, key, checkpoint: note, ...(kept !== undefined ? { leaves: kept } : {}) }, leaves);
    const what = old ? `consistent with the stored checkpoint of ${old.size}` : `first run: key ${vkey.name}+${key.split('+')[1]} pinned`;
    return { ok: true, message: `OK ${cp.origin}: ${cp.size} leaves, ${what}${leaves ? ', every entry re-hashed' : ''}` };
  } catch (err) {
    if (err instanceof Inconsistency) return { ok: false, message: `FAILED: ${err.message}` };
    return { ok: false, message: `FAILED: could not check the log at ${base}: ${err instanceof Error ? err.message : String(err)}` };
  }
}
