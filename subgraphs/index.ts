/** The subgraph registry: every subgraph definition, by name. Zones live in fence/policy.ts. */
import type { SubgraphName } from '../lib/config.js';
import type { SubgraphDefinition } from './definition.js';
import { accounts } from './accounts/index.js';
import { ads } from './ads/index.js';
import { alerts } from './alerts/index.js';
import { merchants } from './merchants/index.js';
import { payments } from './payments/index.js';

export const SUBGRAPHS: Readonly<Record<SubgraphName, SubgraphDefinition>> = {
  accounts: accounts as SubgraphDefinition,
  payments: payments as SubgraphDefinition,
  merchants: merchants as SubgraphDefinition,
  alerts: alerts as SubgraphDefinition,
  ads: ads as SubgraphDefinition,
};
