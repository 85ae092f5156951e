import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'

export type Isolation = 'read_committed' | 'serializable'

// Read-only work runs in one snapshot (REPEATABLE READ) when writes are READ COMMITTED.
const levels = { read_committed: 'READ COMMITTED', repeatable_read: 'REPEATABLE READ', serializable: 'SERIALIZABLE' }

/** The one connection a transaction runs on. */
export interface PgTx {
  /** Runs `text` (a constant: each distinct text is prepared once per connection) and answers its rows. */
  query<T = any>(text: string, values?: unknown[]): Promise<T[]>
}

// SQLSTATEs after which the whole transaction can simply run again: serialization_failure (a
// SERIALIZABLE conflict, or a row changed under a REPEATABLE READ one) and deadlock_detected.
const RETRYABLE = new Set(['40001', '40P01'])
export const isRetryable = (err: unknown): boolean => RETRYABLE.has(String((err as { code?: unknown } | null)?.code))

// Every statement text gets a name, the same for the whole process, so pg parses it once per
// connection and afterwards only binds. Names are prefixed with the process and the connection's
// own number: PGlite serves all its connections from one session, where two connections (of one
// process, or of two: a command run beside the service) preparing the same name would collide.
const textNames = new Map<string, number>()
const connectionNumbers = new WeakMap<pg.PoolClient, number>()
let connections = 0

function statementName (client: pg.PoolClient, text: string): string {
  let connection = connectionNumbers.get(client)
  if (connection === undefined) connectionNumbers.set(client, connection = ++connections)
  let name = textNames.get(text)
  if (name === undefined) textNames.set(text, name = textNames.size + 1)
  return `tally_${process.pid}_${connection}_${name}`
}

/** Waits before attempt `attempt + 1`: about 2 ms, doubling to 100 ms, each between half and all of that. */
export function backoffMs (attempt: number): number {
  const ceiling = Math.min(100, 2 ** attempt)
  return ceiling / 2 + Math.random() * ceiling / 2
}

/**
 * Runs work in PostgreSQL transactions, each on one client checked out of the pool for it (never
 * pool.query, which could put each statement on another connection).
 *
 * A transaction that fails with 40001 or 40P01, in the work or at COMMIT, has changed nothing,
 * so it runs again whole from a fresh BEGIN, after a jittered back-off, up to `maxAttempts`
 * times; then the error propagates. Any other error rolls back and propagates at once: throwing
 * is how work refuses, and the rollback is what makes a refusal change nothing.
 */
export class PgTransactions {
  readonly #pool: pg.Pool
  readonly #begin: string
  readonly #beginReadOnly: string
  readonly #maxAttempts: number

  constructor (pool: pg.Pool, isolation: Isolation | 'repeatable_read', options: { maxAttempts?: number } = {}) {
    this.#pool = pool
    this.#begin = `BEGIN ISOLATION LEVEL ${levels[isolation]}`
    this.#beginReadOnly = `${this.#begin} READ ONLY`
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 10)
  }

  async run<R>(work: (tx: PgTx) => Promise<R>, options: { readOnly?: boolean } = {}): Promise<R> {
    const begin = options.readOnly === true ? this.#beginReadOnly : this.#begin
    let conflict: unknown
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) await sleep(backoffMs(attempt - 1))
      try {
        return await this.#once(begin, work)
      } catch (err) {
        if (!isRetryable(err)) throw err
        conflict = err
      }
    }
    throw conflict
  }

  async #once<R>(begin: string, work: (tx: PgTx) => Promise<R>): Promise<R> {
    const client = await this.#pool.connect()
    // Set when the connection cannot be trusted any more: it is then closed, not returned.
    let broken: Error | undefined
    // A checked-out client whose connection breaks also emits 'error', which unheard would end
    // the process; the query in flight fails with it anyway.
    const onError = (err: Error): void => { broken = err }
    client.on('error', onError)
    let committed = false
    try {
      await client.query(begin)
      const result = await work({
        query: async (text, values) => (await client.query({ name: statementName(client, text), text, values })).rows
      })
      await client.query('COMMIT')
      committed = true
      return result
    } finally {
      // After a failed COMMIT there is no transaction left, and ROLLBACK only warns. If ROLLBACK
      // itself fails, the connection is gone or in a state nobody should inherit.
      if (!committed) await client.query('ROLLBACK').catch((err: Error) => { broken ??= err })
      client.off('error', onError)
      client.release(broken)
    }
  }
}
