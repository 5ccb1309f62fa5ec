/**
 * The collaborators of one running alerts service, built once when it starts (its definition's
 * createServices) and handed to every request context, the graphql-ws endpoint, the internal
 * routes and the workers. Passed explicitly: two alerts services in one process (tests, scale-out
 * stacks) never share or find each other's.
 */
import type { ServiceEnv } from '../definition.js';
import { AlertBus } from './bus.js';
import { createConsumer, type AlertConsumer } from './consumer.js';
import { createFreezeDispatcher } from './freezer.js';
import type { WorkerLoop } from './loop.js';

export interface AlertsServices {
  /** Fan-out of raised alerts to this service's subscriptions (and, over Redis, the others'). */
  bus: AlertBus;
  /** The payments event consumer (started by the workers). */
  consumer: AlertConsumer;
  /** The freeze dispatcher: resolutions wake it after committing a freeze command. */
  freezer: WorkerLoop;
  /** The graphql-ws endpoint's counters (ws.ts), for the status route. */
  endpoint: { connections: number };
}

export function createAlertsServices(env: ServiceEnv): AlertsServices {
  const bus = new AlertBus(env.logger);
  return { bus, consumer: createConsumer(env, bus), freezer: createFreezeDispatcher(env), endpoint: { connections: 0 } };
}
