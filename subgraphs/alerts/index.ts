/** The alerts subgraph: fraud rules and charge alerts (payments zone). */
import { buildSchema, loadSdl, type SubgraphDefinition } from '../definition.js';
import { createLoaders, type AlertsLoaders } from './loaders.js';
import { registerAlertsMetrics } from './metrics.js';
import { migrations } from './migrations.js';
import { resolvers } from './resolvers.js';
import { createAlertsServices, type AlertsServices } from './services.js';
import { statusRoute } from './status.js';
import { startAlertWorkers } from './workers.js';

export const alerts: SubgraphDefinition<AlertsLoaders, AlertsServices> = {
  name: 'alerts',
  typeDefs: loadSdl(new URL('./schema.graphql', import.meta.url)),
  resolvers,
  migrations,
  createServices: createAlertsServices,
  createLoaders: (db) => createLoaders(db),
  // Read by operators and tests, who sign as the gateway.
  internalRoutes: { status: { callers: ['gateway'], handle: statusRoute } },
  /** Consumer lag and freeze-command backlog, at its /metrics. */
  metrics: registerAlertsMetrics,
  /** The event consumer, the freeze dispatcher and the graphql-ws endpoint for the gateway. */
  startWorkers: (env, server, services) => startAlertWorkers(env, server, services, buildSchema(alerts as SubgraphDefinition), alerts.typeDefs),
};
