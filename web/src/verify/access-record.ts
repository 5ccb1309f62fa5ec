/**
 * The "verified in the public log" mark of one of the user's own data-access records, against a
 * checkpoint whose signature was already checked (log.ts): the record's leaf is about this user
 * (its `subject` is the commitment recomputed from the record's salt and the user id), it says
 * what the record says, and its inclusion proof leads to the checkpoint's root. A record newer
 * than the checkpoint is "pending" until the next one.
 */
import type { Checkpoint } from './checkpoint.js';
import { fromBase64, utf8 } from './bytes.js';
import { leafHash, verifyInclusion } from './merkle.js';
import { subjectCommitment } from './subject.js';

export interface OwnRecord {
  leafIndex: number;
  /** The leaf's canonical JSON, as the public log holds it. */
  leaf: string;
  salt: string | null;
  /** What the app shows of the record: it must be what the leaf says. */
  at: string;
  decision: string;
  operationHash: string;
  /** Audit path (standard base64) against the checkpoint's tree; null when that tree is older than the record. */
  proof: { treeSize: number; hashes: string[] } | null;
}

export type Mark = { state: 'verified' } | { state: 'pending' } | { state: 'not-verified'; reason: string };

export async function markOf(r: OwnRecord, userId: string, checkpoint: Checkpoint): Promise<Mark> {
  const fail = (reason: string): Mark => ({ state: 'not-verified', reason });
  if (BigInt(r.leafIndex) >= checkpoint.treeSize) return { state: 'pending' };
  if (!r.proof) return fail('no inclusion proof');
  if (BigInt(r.proof.treeSize) !== checkpoint.treeSize) return fail('proof for another tree');
  let leaf: { subject?: unknown; at?: unknown; decision?: unknown; operationHash?: unknown };
  try {
    leaf = JSON.parse(r.leaf) as typeof leaf;
  } catch {
    return fail('leaf is not JSON');
  }
  if (!r.salt || typeof leaf.subject !== 'string' || leaf.subject !== (await subjectCommitment(r.salt, userId))) return fail('leaf is not about you');
  if (leaf.at !== r.at || leaf.decision !== r.decision || leaf.operationHash !== r.operationHash) return fail('record differs from its leaf');
  const hashes = r.proof.hashes.map(fromBase64);
  if (hashes.some((h) => !h)) return fail('malformed proof');
  const included = await verifyInclusion(BigInt(r.leafIndex), checkpoint.treeSize, await leafHash(utf8(r.leaf)), hashes as Uint8Array[], checkpoint.rootHash);
  return included ? { state: 'verified' } : fail('not in the log');
}
