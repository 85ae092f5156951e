import fp from 'fastify-plugin'
import { PgAlerts } from '../../alerts/postgres.js'
import { PgCredits } from '../../credits/postgres.js'
import { PgIdempotency } from '../../idempotency/postgres.js'
import { PgPoints } from '../../points/postgres.js'
import { PgUsers } from '../../users/postgres.js'
import type { Stores } from '../plugin.js'
import { DatabaseTrouble } from '../trouble.js'
import { migratePostgres } from './migrate.js'
import { connectOrExplain, createPool } from './pool.js'
import { PgStorage } from './storage.js'
import { PgTransactions, type Isolation } from './transaction.js'
import type { DrawOrder } from '../../points/ledger.js'

export interface PostgresStorageOptions {
  url: string
  poolSize: number
  isolation: Isolation
  now: () => Date
  eventTimeUnit: 's' | 'ms'
  idempotencyTtlHours: number
  drawOrder: DrawOrder
}

/**
 * tally on a PostgreSQL server: connects (one line and a failed start if it cannot), migrates
 * under an advisory lock (instances starting together migrate once), then decorates the app with
 * the stores and `storage`; ends the pool after the last request.
 */
export default fp<PostgresStorageOptions>(async (app, opts) => {
  const pool = createPool({ url: opts.url, size: opts.poolSize })
  try {
    await connectOrExplain(pool, opts.url)
    const { applied } = await migratePostgres(pool)
    if (applied.length > 0) app.log.info({ applied }, 'migrations applied')
  } catch (err) {
    await pool.end()
    throw err
  }
  // Under SERIALIZABLE every writer of a hot ledger but the lock holder fails with 40001 once it
  // commits, so a burst needs more attempts than READ COMMITTED's rare deadlock does.
  const writes = new PgTransactions(pool, opts.isolation, { maxAttempts: opts.isolation === 'serializable' ? 30 : 10 })
  // Reads see one snapshot: REPEATABLE READ beside READ COMMITTED writes; SERIALIZABLE when every
  // transaction must be (CockroachDB, YugabyteDB).
  const reads = new PgTransactions(pool, opts.isolation === 'serializable' ? 'serializable' : 'repeatable_read')
  const trouble = new DatabaseTrouble(app.log)
  const keys = new PgIdempotency(opts.now, opts.idempotencyTtlHours)
  const stores: Stores = {
    storage: new PgStorage(pool, writes, reads, keys, trouble),
    points: new PgPoints(reads, opts.now, opts.drawOrder),
    users: new PgUsers(reads, opts.now),
    credits: new PgCredits(reads, opts.now),
    alerts: new PgAlerts(reads, opts.now, opts.eventTimeUnit),
    idempotency: keys
  }
  app.decorate('pg', pool)
  app.decorate('dbTrouble', trouble)
  for (const [name, store] of Object.entries(stores)) app.decorate(name, store)
  app.addHook('onClose', async () => { await pool.end() })
}, { name: 'storage' })
