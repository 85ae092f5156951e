import type { Statement } from 'better-sqlite3'
import type { SqliteIdempotency } from '../../idempotency/sqlite.js'
import { sqliteWork, type KeyedWrite, type Outcome, type SqliteWork, type Storage, type Work } from '../work.js'
import { transactionRunner, type Db, type TransactionRunner } from './open.js'
import { resetDatabase } from './reset.js'
import type { WriteQueue } from './write-queue.js'

/** Work made by the SQLite stores; anything else here is a wiring bug. */
function sqlite<R> (work: Work<R>): SqliteWork<R> {
  /* c8 ignore next */
  if (work.engine !== 'sqlite') throw new TypeError('PostgreSQL work handed to the SQLite engine')
  return work
}

/**
 * The SQLite engine: writes run synchronously inside the group commit (one transaction, a
 * savepoint per write), reads in a deferred transaction that waits for no write lock.
 */
export class SqliteStorage implements Storage {
  readonly engine = 'sqlite'
  readonly #db: Db
  readonly #writes: WriteQueue
  readonly #keys: SqliteIdempotency
  readonly #read: TransactionRunner
  readonly #roundTrip: Statement

  constructor (db: Db, writes: WriteQueue, keys: SqliteIdempotency) {
    this.#db = db
    this.#writes = writes
    this.#keys = keys
    this.#read = transactionRunner(db)
    this.#roundTrip = db.prepare('SELECT 1').pluck()
  }

  async write<R> (work: Work<R>): Promise<R> {
    return await this.#writes.run(sqlite(work).run)
  }

  async writeOnce (work: Work<unknown>, keyed: KeyedWrite): Promise<Outcome> {
    const { run } = sqlite(work)
    return await this.#writes.run(() => this.#keys.once(keyed.key, keyed.fingerprint, keyed.status, () => keyed.serialize(run())))
  }

  async read<R> (work: Work<R>): Promise<R> {
    return this.#read.deferred(sqlite(work).run)
  }

  async ping (): Promise<void> {
    this.#roundTrip.get()
  }

  reset (): SqliteWork<void> {
    return sqliteWork(() => { resetDatabase(this.#db) })
  }
}
