/**
 * POST /internal/status: what this alerts process is doing, for operators and tests of a
 * scale-out deployment: whether its consumer holds the lease (and under which holder id, as in
 * consumer_leases), how many events it applied since it started, whether its bus spans the other
 * processes over Redis, how many subscriptions it streams to, and over how many graphql-ws
 * connections (the gateways multiplex theirs: a handful, whatever the number of subscribers).
 */
import type { InternalRoute } from '../definition.js';
import type { AlertsServices } from './services.js';

export interface AlertsStatus {
  consumer: { holder: string; leader: boolean; applied: number };
  bus: { distributed: boolean; subscriptions: number };
  endpoint: { connections: number };
}

export const statusRoute: InternalRoute<AlertsServices> = async (_env, _body, _requestId, { consumer, bus, endpoint }): Promise<AlertsStatus> => ({
  consumer: { holder: consumer.lease.holder, leader: consumer.leader, applied: consumer.applied },
  bus: { distributed: bus.distributed, subscriptions: bus.listenerCount() },
  endpoint: { connections: endpoint.connections },
});
