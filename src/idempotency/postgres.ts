import { IdempotencyKeyReused } from '../errors.js'
import { postgresWork, type KeyedWrite, type Outcome, type PgTx, type PostgresWork } from '../storage/work.js'
import { keyCutoff, type IdempotencyStore } from './store.js'

export const pgIdempotencySql = {
  // The key's primary key decides which request runs. This claims a new key, or one past its TTL
  // that no purge has removed yet, with an answer still to come; a request with the same key in
  // another transaction waits here until this one commits (and replays) or rolls back (and claims).
  claim:
    "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ($1, $2, 0, '', $3) " +
    'ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, status = 0, body = excluded.body, ' +
    'created_at = excluded.created_at WHERE idempotency_keys.created_at < $4 RETURNING key',
  // The claimed row gets its answer. The work may have erased it with every other row (/flushDB):
  // then it is written again, so the key outlives the flush as it does on SQLite, where it is
  // stored after the work.
  answer:
    'INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, $4, $5) ' +
    'ON CONFLICT (key) DO UPDATE SET status = excluded.status, body = excluded.body',
  find: 'SELECT fingerprint, status, body FROM idempotency_keys WHERE key = $1',
  // In batches of 1000. created_at is checked on the row itself too: a key claimed again by a
  // request while this waited for its lock is judged as it is now, and kept.
  purge:
    'WITH purged AS (DELETE FROM idempotency_keys WHERE key IN ' +
    '(SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT 1000) AND created_at < $1 RETURNING 1) ' +
    'SELECT count(*) AS count FROM purged'
} as const

/** Stored answers to keyed write requests, on PostgreSQL. */
export class PgIdempotency implements IdempotencyStore {
  readonly #now: () => Date
  readonly #ttlMs: number

  constructor (now: () => Date, ttlHours: number) {
    this.#now = now
    this.#ttlMs = ttlHours * 3600_000
  }

  /**
   * Inside the request's transaction, before its work: the first request with the key claims it,
   * runs `run` and stores the answer, all in this transaction, so the work and its answer commit
   * together or not at all. A repeat (once the first has committed) gets the stored answer, or
   * IDEMPOTENCY_KEY_REUSED for another request. The key is the first row this transaction locks,
   * so the lock order is always: the key, then the rows the work locks.
   */
  async once (tx: PgTx, keyed: KeyedWrite, run: () => Promise<unknown>): Promise<Outcome> {
    const { key, fingerprint, status } = keyed
    for (;;) {
      const now = this.#now()
      const claimed = await tx.query(pgIdempotencySql.claim, [key, fingerprint, now.toISOString(), keyCutoff(now, this.#ttlMs)])
      if (claimed.length > 0) {
        const body = keyed.serialize(await run())
        await tx.query(pgIdempotencySql.answer, [key, fingerprint, status, body, now.toISOString()])
        return { replayed: false, status, body }
      }
      const [stored] = await tx.query<{ fingerprint: string, status: number, body: string }>(pgIdempotencySql.find, [key])
      if (stored !== undefined) {
        if (stored.fingerprint !== fingerprint) throw new IdempotencyKeyReused()
        return { replayed: true, status: stored.status, body: stored.body }
      }
      // Gone between the two statements: it expired just then and a purge removed it. Claim again.
    }
  }

  purge (): PostgresWork<number> {
    return postgresWork(async tx => {
      const cutoff = keyCutoff(this.#now(), this.#ttlMs)
      let deleted = 0
      for (;;) {
        const [{ count }] = await tx.query<{ count: number }>(pgIdempotencySql.purge, [cutoff]) as [{ count: number }]
        if (count === 0) return deleted
        deleted += count
      }
    })
  }
}
