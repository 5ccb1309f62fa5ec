/**
 * The collaborators of one payments service, built once per service (SubgraphDefinition
 * createServices) and passed explicitly to resolvers (ctx.services), internal routes and workers:
 * the ledger of its database, the movements queued on that ledger's group commit, and the event
 * feed woken by that ledger's commits. Tests and the bench that move money in process build their
 * own with the same factory; nothing is shared through module-level state.
 */
import type { Knex } from 'knex';
import type { Logger } from '../../lib/log.js';
import type { ConsentGate } from './consent.js';
import { EventFeed } from './event-feed.js';
import { createLedger, type Ledger } from './ledger/index.js';
import { createMovements, type Movements } from './movements/index.js';

export interface PaymentsServices {
  ledger: Ledger;
  movements: Movements;
  feed: EventFeed;
  /** Who decides the user's consent for an account's data (consent.ts: the accounts service). */
  consent: ConsentGate;
}

/** Without a consent gate (in-process movements, tests of the ledger): every consent check fails closed. */
const NO_CONSENT: ConsentGate = {
  decide: () => Promise.reject(new Error('no consent gate: this payments service cannot serve account data')),
};

export function createPaymentsServices({
  db,
  logger,
  clock,
  consent,
}: {
  db: Knex;
  logger: Logger;
  clock?: () => Date;
  consent?: ConsentGate;
}): PaymentsServices {
  const ledger = createLedger({ db, logger });
  return {
    ledger,
    movements: createMovements({ db, ledger, clock }),
    feed: new EventFeed({ ledger, db, logger }),
    consent: consent ?? NO_CONSENT,
  };
}
