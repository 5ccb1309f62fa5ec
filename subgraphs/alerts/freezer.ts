/**
 * The freeze dispatcher: delivers the freeze commands that `resolveChargeAlert(fraudulent: true)`
 * wrote (in the same transaction as the CONFIRMED_FRAUD status) to the payments service's
 * `freeze` route, at least once, retrying with backoff while payments is unreachable. The
 * payments side is idempotent, so a repeated delivery is harmless; no freeze is ever dropped.
 */
import type { Knex } from 'knex';
import { callInternal, InternalCallError } from '../../lib/transport/internal-client.js';
import type { ServiceEnv } from '../definition.js';
import { dueFreezeCommands, markFreeze, type FreezeCommand } from './data.js';
import { backoff, WorkerLoop } from './loop.js';

/** How often the dispatcher looks for due commands (it is also woken right after a resolution). */
export const FREEZE_POLL_MS = 250;
/** Commands per round. */
export const FREEZE_BATCH = 20;
/** Backoff between delivery attempts of one command. */
export const FREEZE_RETRY_MIN_MS = 200;
export const FREEZE_RETRY_MAX_MS = 30_000;
export const FREEZE_TIMEOUT_MS = 5_000;

type FreezeResponse = { frozen: true } | { frozen: false; error: string };

export async function deliver(env: ServiceEnv, db: Knex, cmd: FreezeCommand): Promise<void> {
  const log = env.logger;
  const attempts = cmd.attempts + 1;
  try {
    const base = env.peers.payments;
    if (!base) throw new Error('the payments service URL is not known yet');
    const res = await callInternal<FreezeResponse>(
      env.signer,
      'payments',
      base,
      'freeze',
      { accountId: cmd.accountId, alertId: cmd.alertId },
      { timeoutMs: FREEZE_TIMEOUT_MS, requestId: cmd.id },
    );
    if (res.frozen) {
      await markFreeze(db, cmd.id, { status: 'DELIVERED', attempts, deliveredAt: new Date().toISOString(), lastError: null });
      return;
    }
    // A definite answer from payments that retrying cannot change (e.g. ACCOUNT_NOT_FOUND).
    log.error({ accountId: cmd.accountId, alertId: cmd.alertId, err: res.error }, 'payments refused to freeze an account');
    await markFreeze(db, cmd.id, { status: 'FAILED', attempts, lastError: res.error });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const next = new Date(Date.now() + backoff(attempts, FREEZE_RETRY_MIN_MS, FREEZE_RETRY_MAX_MS)).toISOString();
    if (attempts === 1 || attempts % 10 === 0)
      log.warn(
        {
          accountId: cmd.accountId,
          alertId: cmd.alertId,
          attempt: attempts,
          ...(err instanceof InternalCallError ? { status: err.status } : {}),
          err: message,
        },
        'freeze not delivered yet',
      );
    await markFreeze(db, cmd.id, { status: 'PENDING', attempts, nextAttemptAt: next, lastError: message });
  }
}

/**
 * The freeze dispatcher of one alerts service, not started yet: `start()` once the service
 * listens; `wake()` right after a resolution committed a command, so it is delivered at once.
 */
export function createFreezeDispatcher(env: ServiceEnv): WorkerLoop {
  return new WorkerLoop(
    'alerts freeze dispatcher',
    async (loop) => {
      try {
        const due = await dueFreezeCommands(env.db, new Date().toISOString(), FREEZE_BATCH);
        for (const cmd of due) {
          if (!loop.isRunning) return 0;
          await deliver(env, env.db, cmd);
        }
        return due.length >= FREEZE_BATCH ? 0 : FREEZE_POLL_MS;
      } catch (err) {
        env.logger.error({ err }, 'freeze dispatcher round failed');
        return FREEZE_RETRY_MAX_MS / 10;
      }
    },
    env.logger,
  );
}
