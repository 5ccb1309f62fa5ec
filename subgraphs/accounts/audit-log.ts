/**
 * The audit service's transparency log: its checkpoint key, its signed checkpoints and its proofs
 * (docs/audit.md). One per accounts process (SubgraphDefinition.createServices).
 *
 * The checkpoint key is the audit service's own Ed25519 key: derived (HKDF-SHA-256, a label of its
 * own) from the accounts service's per-install private key, so only the accounts service holds it,
 * nothing has to hand it out, and it never signs anything but checkpoints (the accounts transport
 * key signs requests, never a note). The gateway never holds it: it relays what this service signed.
 *
 * A checkpoint is signed on demand (GET /audit/checkpoint always answers one of the current tree,
 * or one at most PUBLISH_INTERVAL_MS old when another accounts process appended), and the
 * publisher re-signs at least every PUBLISH_INTERVAL_MS while the log grows.
 */
import { createHash, createPrivateKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from '../../lib/log.js';
import { signCheckpoint, verifierKey } from '../../lib/transparency/checkpoint.js';
import { consistencyProof, inclusionProof, rootHash } from '../../lib/transparency/merkle.js';
import { auditLeaves } from './data.js';
import { storedNodes, treeSize, type TreeHead } from './audit-tree.js';

/** At least this often a new checkpoint is signed while the log grows. */
export const PUBLISH_INTERVAL_MS = 10_000;
/** Most entries one /audit/entries answer carries. */
export const MAX_ENTRIES = 1_000;

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The checkpoint key of the accounts service whose private key is `accountsKey`. */
export function checkpointKeyOf(accountsKey: KeyObject): KeyObject {
  const seed = Buffer.from(accountsKey.export({ format: 'jwk' }).d!, 'base64url');
  const derived = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), 'paygraph.dev/audit/checkpoint-key/v1', 32));
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, derived]), format: 'der', type: 'pkcs8' });
}

/** `paygraph.dev/audit/<install id>`, the install id naming the key (its first 8 bytes of SHA-256, hex). */
export function defaultOrigin(key: KeyObject): string {
  const pub = key.export({ format: 'jwk' }).x!;
  return `paygraph.dev/audit/${createHash('sha256').update(Buffer.from(pub, 'base64url')).digest('hex').slice(0, 16)}`;
}

/** A bad request parameter: answered 400 by the gateway, naming it. */
export class ParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}

const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64');

export class AuditLog {
  readonly key: KeyObject;
  readonly origin: string;
  readonly vkey: string;
  private latest: { size: number; note: string; at: number } | null = null;
  private signing: Promise<string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** This process's last committed tree head (data.ts appendDataAccessBatch). */
  readonly head: { current: TreeHead | null } = { current: null };

  constructor(
    private readonly db: Knex,
    accountsKey: KeyObject,
    private readonly log: Logger,
    origin?: string,
  ) {
    this.key = checkpointKeyOf(accountsKey);
    this.origin = origin ?? defaultOrigin(this.key);
    this.vkey = verifierKey(this.origin, this.key);
  }

  /** The log grew (this process appended): the next checkpoint request signs the new size. */
  appended(): void {
    this.latest = null;
  }

  /** The latest signed checkpoint (signed-note text), signing one for the current tree when needed. */
  checkpoint(): Promise<string> {
    if (this.latest && Date.now() - this.latest.at < PUBLISH_INTERVAL_MS) return Promise.resolve(this.latest.note);
    // Concurrent callers share one signature.
    this.signing ??= this.sign().finally(() => (this.signing = null));
    return this.signing;
  }

  private async sign(): Promise<string> {
    const size = await treeSize(this.db);
    const root = await rootHash(size, storedNodes(this.db));
    const note = signCheckpoint({ origin: this.origin, size, root }, this.key);
    if (this.latest?.size !== size) this.log.debug({ audit: { size, root: b64(root) } }, 'audit checkpoint signed');
    this.latest = { size, note, at: Date.now() };
    return note;
  }

  /** Re-signs at least every PUBLISH_INTERVAL_MS while the log grows (also what other processes appended). */
  startPublisher(intervalMs = PUBLISH_INTERVAL_MS): void {
    this.timer = setInterval(() => {
      void (async () => {
        const size = await treeSize(this.db);
        if (this.latest?.size !== size) {
          this.latest = null;
          await this.checkpoint();
        }
      })().catch((err: unknown) => this.log.warn({ err: String(err) }, 'audit checkpoint publisher: could not sign'));
    }, intervalMs);
    this.timer.unref();
  }

  stopPublisher(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  treeSize(): Promise<number> {
    return treeSize(this.db);
  }

  async inclusion(index: number, size: number): Promise<{ index: number; treeSize: number; leafHash: string; hashes: string[] }> {
    const current = await treeSize(this.db);
    if (size > current) throw new ParameterError('size', `size ${size} is beyond the current tree size ${current}`);
    if (size < 1) throw new ParameterError('size', 'size must be at least 1');
    if (index >= size) throw new ParameterError('index', `index ${index} is not below size ${size}`);
    const read = storedNodes(this.db);
    const [leaf] = await read([{ level: 0, index }]);
    const hashes = await inclusionProof(index, size, read);
    return { index, treeSize: size, leafHash: b64(leaf!), hashes: hashes.map(b64) };
  }

  async consistency(from: number, to: number): Promise<{ from: number; to: number; hashes: string[] }> {
    if (from > to) throw new ParameterError('from', `from ${from} is beyond to ${to}`);
    const current = await treeSize(this.db);
    if (to > current) throw new ParameterError('to', `to ${to} is beyond the current tree size ${current}`);
    return { from, to, hashes: (await consistencyProof(from, to, storedNodes(this.db))).map(b64) };
  }

  async entries(start: number, end: number): Promise<{ entries: { index: number; leaf: string }[] }> {
    if (start > end) throw new ParameterError('start', `start ${start} is beyond end ${end}`);
    if (end - start > MAX_ENTRIES) throw new ParameterError('end', `at most ${MAX_ENTRIES} entries at once (end - start)`);
    const current = await treeSize(this.db);
    if (end > current) throw new ParameterError('end', `end ${end} is beyond the current tree size ${current}`);
    return { entries: await auditLeaves(this.db, start, end) };
  }
}
