/**
 * The "verified in the public log" mark of a data-access record (Privacy screen; the endpoints come
 * with issue #13): the checkpoint's Ed25519 signature by the pinned log key, then the record's
 * inclusion proof against that checkpoint's root. Any failure is "not verified", with its reason.
 */
import { verifyCheckpoint, parseVerifierKey } from './checkpoint.js';
import { leafHash, verifyInclusion } from './merkle.js';

export interface RecordProof {
  /** The record's leaf bytes, as the log hashed them. */
  leaf: Uint8Array;
  /** Its index in the log (DataAccessRecord.leafIndex). */
  index: bigint;
  /** Audit path from the leaf to the root of the checkpoint's tree. */
  proof: Uint8Array[];
  /** The signed checkpoint (C2SP signed note), as fetched. */
  checkpoint: string;
  /** The log's verifier key, pinned in the app (never taken from the server it checks). */
  verifierKey: string;
  origin?: string;
}

export type Verdict = { verified: true; treeSize: bigint } | { verified: false; reason: string };

export async function verifyRecord(r: RecordProof): Promise<Verdict> {
  const verifier = await parseVerifierKey(r.verifierKey);
  if (!verifier) return { verified: false, reason: 'bad pinned key' };
  const cp = await verifyCheckpoint(r.checkpoint, verifier, r.origin);
  if (!cp.ok) return { verified: false, reason: cp.reason };
  const included = await verifyInclusion(r.index, cp.checkpoint.treeSize, await leafHash(r.leaf), r.proof, cp.checkpoint.rootHash);
  return included ? { verified: true, treeSize: cp.checkpoint.treeSize } : { verified: false, reason: 'not in the log' };
}
