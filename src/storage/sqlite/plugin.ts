import fp from 'fastify-plugin'
import { openDatabase, type Db } from './open.js'
import { migrate } from './migrate.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
  }
}

export interface DbPluginOptions {
  dbPath: string
  synchronous: 'normal' | 'full'
}

/** Owns the database handle: opens and migrates it on start, closes it after the last request. */
export default fp<DbPluginOptions>(async (app, opts) => {
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
  app.decorate('db', db)
  app.addHook('onClose', async () => { db.close() })
}, { name: 'db' })
