import type { Statement } from 'better-sqlite3'
import type { Db } from '../storage/sqlite/open.js'
import { sqliteWork, type Outcome, type SqliteWork } from '../storage/work.js'
import { IdempotencyKeyReused } from '../errors.js'
import { keyCutoff, type IdempotencyStore } from './store.js'

export const idempotencySql = {
  find: 'SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE key = @key',
  forget: 'DELETE FROM idempotency_keys WHERE key = @key',
  remember:
    'INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) ' +
    'VALUES (@key, @fingerprint, @status, @body, @now)',
  // In batches, so a large purge never holds the write lock for long.
  purge:
    'DELETE FROM idempotency_keys WHERE rowid IN ' +
    '(SELECT rowid FROM idempotency_keys WHERE created_at < @cutoff LIMIT 1000)'
}

/** Stored answers to keyed write requests, on SQLite. */
export class SqliteIdempotency implements IdempotencyStore {
  readonly #now: () => Date
  readonly #ttlMs: number
  readonly #find: Statement
  readonly #forget: Statement
  readonly #remember: Statement
  readonly #purge: Statement

  constructor (db: Db, now: () => Date, ttlHours: number) {
    this.#now = now
    this.#ttlMs = ttlHours * 3600_000
    this.#find = db.prepare(idempotencySql.find)
    this.#forget = db.prepare(idempotencySql.forget)
    this.#remember = db.prepare(idempotencySql.remember)
    this.#purge = db.prepare(idempotencySql.purge)
  }

  /**
   * Inside a write of the group commit: the first request with `key` runs `work` and its answer
   * is stored in the same transaction, so both commit or neither does. A repeat with the same
   * fingerprint gets the stored answer; with another, IDEMPOTENCY_KEY_REUSED. A refused request
   * stores nothing, so its retry runs again. One writer at a time makes find-then-insert exact.
   */
  once (key: string, fingerprint: string, status: number, work: () => string): Outcome {
    const stored = this.#find.get({ key }) as { fingerprint: string, status: number, body: string, created_at: string } | undefined
    if (stored !== undefined && stored.created_at >= keyCutoff(this.#now(), this.#ttlMs)) {
      if (stored.fingerprint !== fingerprint) throw new IdempotencyKeyReused()
      return { replayed: true, status: stored.status, body: stored.body }
    }
    // An expired key not purged yet is as good as gone.
    if (stored !== undefined) this.#forget.run({ key })
    const body = work()
    this.#remember.run({ key, fingerprint, status, body, now: this.#now().toISOString() })
    return { replayed: false, status, body }
  }

  purge (): SqliteWork<number> {
    return sqliteWork(() => {
      const cutoff = keyCutoff(this.#now(), this.#ttlMs)
      let deleted = 0
      for (let batch = this.#purge.run({ cutoff }).changes; batch > 0; batch = this.#purge.run({ cutoff }).changes) deleted += batch
      return deleted
    })
  }
}
