import type { Pool } from 'pg'
import type { AlertsStore } from '../alerts/store.js'
import type { CreditsStore } from '../credits/store.js'
import type { IdempotencyStore } from '../idempotency/store.js'
import type { PointsStore } from '../points/store.js'
import type { UsersStore } from '../users/store.js'
import type { Storage } from './work.js'

/** What each engine's plugin decorates the app with: the routes read these and nothing else. */
export interface Stores {
  storage: Storage
  points: PointsStore
  users: UsersStore
  credits: CreditsStore
  alerts: AlertsStore
  idempotency: IdempotencyStore
}

declare module 'fastify' {
  interface FastifyInstance extends Stores {
    /** PostgreSQL only: the pool, for PostgreSQL's own tests and tools. */
    pg: Pool
  }
}
