/** A PostgreSQL transaction as a store sees it: every statement on the transaction's one client. */
export interface PgTx {
  query: <T = any>(text: string, values?: unknown[]) => Promise<T[]>
}

/**
 * One unit of work of a store, to run in one transaction of the engine whose store made it.
 * Routes hand it to the write path unopened: they never learn which engine is underneath.
 *
 * - SQLite: synchronous, so it runs inside the group commit with no `await` in the transaction.
 * - PostgreSQL: asynchronous, every statement on the transaction's one client.
 */
export type Work<R> = SqliteWork<R> | PostgresWork<R>

export interface SqliteWork<R> {
  readonly engine: 'sqlite'
  readonly run: () => R
}

export interface PostgresWork<R> {
  readonly engine: 'postgres'
  readonly run: (tx: PgTx) => Promise<R>
}

export const sqliteWork = <R>(run: () => R): SqliteWork<R> => ({ engine: 'sqlite', run })
export const postgresWork = <R>(run: (tx: PgTx) => Promise<R>): PostgresWork<R> => ({ engine: 'postgres', run })

/** A write with an Idempotency-Key: applied at most once per key, its answer stored with it. */
export interface KeyedWrite {
  key: string
  /** sha256 of method, URL and canonical body: a key reused for another request is refused. */
  fingerprint: string
  status: number
  /** The route's own serializer: the stored answer is byte for byte what the first caller got. */
  serialize: (result: unknown) => string
}

export interface Outcome {
  replayed: boolean
  status: number
  body: string
}

/**
 * The engine, as the write path and the maintenance timers see it. Decorated as `app.storage`.
 */
export interface Storage {
  readonly engine: 'sqlite' | 'postgres'
  /** Runs a write in one transaction; resolves once it is committed. */
  write: <R>(work: Work<R>) => Promise<R>
  /** write(), at most once per key: the answer is stored in the same transaction as the work. */
  writeOnce: (work: Work<unknown>, keyed: KeyedWrite) => Promise<Outcome>
  /** Runs work that writes nothing (a dry run) without waiting for any write lock. */
  read: <R>(work: Work<R>) => Promise<R>
  /** One round trip to the database: the readiness probe. */
  ping: () => Promise<void>
  /** Returns the database to its freshly migrated state (the guarded flush). */
  reset: () => Work<void>
}

/** The same work, its result passed through `f` (pure) inside the transaction. */
export function mapWork<R, S> (work: Work<R>, f: (result: R) => S): Work<S> {
  if (work.engine === 'sqlite') return sqliteWork(() => f(work.run()))
  return postgresWork(async tx => f(await work.run(tx)))
}
