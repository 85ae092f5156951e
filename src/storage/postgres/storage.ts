import type pg from 'pg'
import type { PgIdempotency } from '../../idempotency/postgres.js'
import type { DatabaseTrouble } from '../trouble.js'
import { postgresWork, type KeyedWrite, type Outcome, type PostgresWork, type Storage, type Work } from '../work.js'
import type { PgTransactions } from './transaction.js'

/** Work made by the PostgreSQL stores; anything else here is a wiring bug. */
function postgres<R> (work: Work<R>): PostgresWork<R> {
  /* c8 ignore next */
  if (work.engine !== 'postgres') throw new TypeError('SQLite work handed to the PostgreSQL engine')
  return work
}

// Every table but the migrations' record, emptied at once (TRUNCATE checks the foreign keys
// between them as a whole) and its ids restarted.
const RESET =
  "DO $$ DECLARE tables text; BEGIN SELECT string_agg(format('%I', tablename), ', ') INTO tables " +
  "FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schemaversion'; " +
  "EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY'; END $$"

/**
 * The PostgreSQL engine: each write is its own transaction on one client (there is no group
 * commit: several processes share the server, and each commit is the server's to batch), retried
 * whole on a serialization failure or deadlock; reads run in one read-only snapshot.
 */
export class PgStorage implements Storage {
  readonly engine = 'postgres'
  readonly #pool: pg.Pool
  readonly #writes: PgTransactions
  readonly #reads: PgTransactions
  readonly #keys: PgIdempotency
  readonly #trouble: DatabaseTrouble

  constructor (pool: pg.Pool, writes: PgTransactions, reads: PgTransactions, keys: PgIdempotency, trouble: DatabaseTrouble) {
    this.#pool = pool
    this.#writes = writes
    this.#reads = reads
    this.#keys = keys
    this.#trouble = trouble
  }

  async write<R> (work: Work<R>): Promise<R> {
    const result = await this.#writes.run(postgres(work).run)
    this.#trouble.cleared()
    return result
  }

  async writeOnce (work: Work<unknown>, keyed: KeyedWrite): Promise<Outcome> {
    const { run } = postgres(work)
    const outcome = await this.#writes.run(async tx => await this.#keys.once(tx, keyed, async () => await run(tx)))
    this.#trouble.cleared()
    return outcome
  }

  async read<R> (work: Work<R>): Promise<R> {
    return await this.#reads.run(postgres(work).run, { readOnly: true })
  }

  async ping (): Promise<void> {
    await this.#pool.query('SELECT 1')
  }

  reset (): PostgresWork<void> {
    return postgresWork(async tx => { await tx.query(RESET) })
  }
}
