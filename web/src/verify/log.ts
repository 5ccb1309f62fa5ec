/**
 * The public log as the browser sees it: the verifier key, pinned in localStorage the first time
 * it is seen (trust on first use, like the witness CLI; a different key later is a warning, never
 * a silent re-pin), and the latest checkpoint, verified against the pinned key with WebCrypto.
 */
import { parseVerifierKey, verifyCheckpoint, type Checkpoint } from './checkpoint.js';

export const PINNED_KEY = 'paygraph.audit.key';

export type LogState =
  { ok: true; checkpoint: Checkpoint; key: string; firstUse: boolean } | { ok: false; reason: string; keyChanged?: { pinned: string; served: string } };

async function text(url: string): Promise<string> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** Forgets the pinned key and pins `key` (the user chose to trust a new key). */
export function repin(key: string): void {
  localStorage.setItem(PINNED_KEY, key);
}

export async function fetchVerifiedCheckpoint(): Promise<LogState> {
  let served: string;
  let note: string;
  try {
    [served, note] = await Promise.all([text('/audit/key').then((k) => k.trim()), text('/audit/checkpoint')]);
  } catch (err) {
    return { ok: false, reason: `public log unreachable (${err instanceof Error ? err.message : String(err)})` };
  }
  const pinned = localStorage.getItem(PINNED_KEY);
  if (pinned && pinned !== served) return { ok: false, reason: 'the log key changed', keyChanged: { pinned, served } };
  const verifier = await parseVerifierKey(pinned ?? served);
  if (!verifier) return { ok: false, reason: 'bad log key' };
  if (!pinned) localStorage.setItem(PINNED_KEY, served);
  // The key's name is the log's origin: a checkpoint of another log, even signed, is refused.
  const cp = await verifyCheckpoint(note, verifier, verifier.name);
  return cp.ok ? { ok: true, checkpoint: cp.checkpoint, key: served, firstUse: !pinned } : { ok: false, reason: cp.reason };
}

/** The audit path of leaf `index` in the tree of `treeSize` leaves (public, no token); null when the log has none. */
export async function fetchInclusionProof(index: number, treeSize: bigint): Promise<{ treeSize: number; hashes: string[] } | null> {
  const res = await fetch(`/audit/proof/inclusion?index=${index}&size=${treeSize}`);
  if (!res.ok) return null;
  return (await res.json()) as { treeSize: number; hashes: string[] };
}
