/**
 * The alerts service's background work, started after its HTTP server listens: the payments
 * event consumer (lease -> long-polled feed -> rules -> alerts -> bus), the freeze dispatcher, and
 * the graphql-ws endpoint that streams the bus to the gateway's subscription bridge. With
 * ServiceEnv.redisUrl the bus also spans the other alerts processes of the same database.
 */
import type http from 'node:http';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { Knex } from 'knex';
import type { ServiceEnv } from '../definition.js';
import { AlertBus, registerFreezeWaker } from './bus.js';
import { startConsumer, type AlertConsumer } from './consumer.js';
import { startFreezeDispatcher } from './freezer.js';
import { serveAlertSubscriptions } from './ws.js';

export interface AlertWorkers {
  bus: AlertBus;
  consumer: AlertConsumer;
}

/** The running workers of the alerts service using `db` (tests: lease holder, applied events). */
const running = new WeakMap<Knex, AlertWorkers>();
export function alertWorkersOf(db: Knex): AlertWorkers | undefined {
  return running.get(db);
}

export async function startAlertWorkers(env: ServiceEnv, server: http.Server, schema: GraphQLSchema, typeDefs: DocumentNode): Promise<() => Promise<void>> {
  const bus = await AlertBus.create(env.db, env.redisUrl);
  const ws = serveAlertSubscriptions(server, { env, bus, schema, typeDefs });
  const consumer = startConsumer(env, bus);
  const freezer = startFreezeDispatcher(env);
  const unregister = registerFreezeWaker(env.db, () => freezer.wake());
  const workers: AlertWorkers = { bus, consumer };
  running.set(env.db, workers);
  consumer.start();
  freezer.start();
  return async () => {
    unregister();
    if (running.get(env.db) === workers) running.delete(env.db);
    // Close the subscribers first (1001 Going Away), so the gateway's bridge starts reconnecting.
    await ws.dispose();
    // Aborts a pending long poll at once, then releases the lease for a standby worker.
    await consumer.stop();
    await freezer.stop();
    await bus.close();
  };
}
