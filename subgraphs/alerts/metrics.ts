/**
 * The alerts service's own metrics (served at its /metrics, subgraphs/service.ts), read when
 * Prometheus scrapes:
 * - consumer lag: on the worker holding the lease, how old the oldest payments event it has not
 *   applied yet is (0 when caught up), asked of the payments feed without waiting; the events
 *   applied since start, and whether this process leads;
 * - freeze-command backlog: commands not yet delivered to payments, and the age of the oldest.
 */
import { Gauge, type Registry } from 'prom-client';
import { callInternal } from '../../lib/transport/internal-client.js';
import type { ServiceEnv } from '../definition.js';
import type { FeedEvent } from './apply.js';
import { readPosition } from './data.js';
import type { AlertsServices } from './services.js';

/** How long a scrape waits for the payments feed. */
const LAG_PROBE_TIMEOUT_MS = 2_000;

async function oldestUnapplied(env: ServiceEnv): Promise<number> {
  const base = env.peers.payments;
  if (!base) return Number.NaN;
  const position = await readPosition(env.db);
  const { events } = await callInternal<{ events: FeedEvent[] }>(
    env.signer,
    'payments',
    base,
    'events',
    { after: position, limit: 1, waitMs: 0 },
    { timeoutMs: LAG_PROBE_TIMEOUT_MS },
  );
  const first = events[0];
  return first ? Math.max(0, (Date.now() - Date.parse(first.createdAt)) / 1000) : 0;
}

export function registerAlertsMetrics(registry: Registry, env: ServiceEnv, services: AlertsServices): void {
  const { consumer } = services;
  new Gauge({
    name: 'paygraph_alerts_consumer_leader',
    help: 'Whether this alerts process holds the consumer lease (1) or stands by (0).',
    registers: [registry],
    collect() {
      this.set(consumer.leader ? 1 : 0);
    },
  });
  new Gauge({
    name: 'paygraph_alerts_consumer_applied_events',
    help: 'Payments events this process’s consumer applied since it started.',
    registers: [registry],
    collect() {
      this.set(consumer.applied);
    },
  });
  new Gauge({
    name: 'paygraph_alerts_consumer_lag_seconds',
    help: 'Age of the oldest payments event the consumer has not applied yet (0: caught up), on the lease holder; NaN when the feed cannot be asked.',
    registers: [registry],
    async collect() {
      if (!consumer.leader) return this.set(0);
      this.set(await oldestUnapplied(env).catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'paygraph_alerts_freeze_backlog',
    help: 'Freeze commands not yet delivered to the payments service (PENDING).',
    registers: [registry],
    async collect() {
      const row = (await env.db('freeze_commands').where('status', 'PENDING').count({ n: '*' }).first()) as { n: number | string } | undefined;
      this.set(Number(row?.n ?? 0));
    },
  });
  new Gauge({
    name: 'paygraph_alerts_freeze_oldest_pending_seconds',
    help: 'Age of the oldest undelivered freeze command (0: none).',
    registers: [registry],
    async collect() {
      const row = (await env.db('freeze_commands').where('status', 'PENDING').min({ at: 'created_at' }).first()) as { at: string | Date | null } | undefined;
      const at = row?.at ? new Date(row.at).getTime() : null;
      this.set(at === null ? 0 : Math.max(0, (Date.now() - at) / 1000));
    },
  });
}
