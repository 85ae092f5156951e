import fp from 'fastify-plugin'
import { SqliteAlerts } from '../../alerts/sqlite.js'
import { SqliteCredits } from '../../credits/sqlite.js'
import { SqliteIdempotency } from '../../idempotency/sqlite.js'
import { SqlitePoints } from '../../points/sqlite.js'
import { SqliteUsers } from '../../users/sqlite.js'
import type { Stores } from '../plugin.js'
import { migrate } from './migrate.js'
import { openDatabase, type Db } from './open.js'
import { SqliteStorage } from './storage.js'
import { DatabaseTrouble } from '../trouble.js'
import { WriteQueue } from './write-queue.js'
import type { DrawOrder } from '../../points/ledger.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** SQLite only: the connection, for SQLite's own tests and tools. */
    db: Db
    /** SQLite only: the group commit every write goes through. */
    writes: WriteQueue
  }
}

export interface SqliteStorageOptions {
  dbPath: string
  synchronous: 'normal' | 'full'
  now: () => Date
  eventTimeUnit: 's' | 'ms'
  idempotencyTtlHours: number
  drawOrder: DrawOrder
}

/**
 * tally on a SQLite file: opens and migrates it, then decorates the app with the group commit,
 * the stores and `storage`; closes the file after the last request.
 */
export default fp<SqliteStorageOptions>(async (app, opts) => {
  const db = openDatabase(opts.dbPath, opts.synchronous)
  try {
    const { applied } = await migrate(db)
    if (applied.length > 0) app.log.info({ applied }, 'migrations applied')
  } catch (err) {
    db.close()
    throw err
  }
  // From here on no statement waits for another process's lock on the event loop: a write finds
  // the lock taken at once and the write queue waits for it asynchronously (write-queue.ts).
  db.pragma('busy_timeout = 0')
  const trouble = new DatabaseTrouble(app.log)
  const writes = new WriteQueue(db, trouble)
  const keys = new SqliteIdempotency(db, opts.now, opts.idempotencyTtlHours)
  const stores: Stores = {
    storage: new SqliteStorage(db, writes, keys),
    points: new SqlitePoints(db, opts.now, opts.drawOrder),
    users: new SqliteUsers(db, opts.now),
    credits: new SqliteCredits(db, opts.now),
    alerts: new SqliteAlerts(db, opts.now, opts.eventTimeUnit),
    idempotency: keys
  }
  app.decorate('db', db)
  app.decorate('writes', writes)
  app.decorate('dbTrouble', trouble)
  for (const [name, store] of Object.entries(stores)) app.decorate(name, store)
  app.addHook('onClose', async () => {
    app.log.info({ slowestCommitMs: Math.round(writes.slowestCommitMs * 100) / 100 }, 'group commit: the slowest batch')
    db.close()
  })
}, { name: 'storage' })
