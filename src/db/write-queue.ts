import type { Transaction } from 'better-sqlite3'
import fp from 'fastify-plugin'
import type { Db } from './open.js'

interface Job {
  work: () => unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

type Outcome = { ok: true, value: unknown } | { ok: false, error: unknown }

/**
 * Group commit. The commit is what a write costs most (an IMMEDIATE transaction and its commit
 * take about as long as a whole HTTP request), so writes submitted in the same turn of the event
 * loop run one after another in ONE transaction, each in its own savepoint, and every one is
 * answered only after the shared COMMIT. A write that throws rolls back its own savepoint only;
 * if the commit itself fails, every write in the batch fails and none is answered as done.
 */
export class WriteQueue {
  #jobs: Job[] = []
  readonly #batch: Transaction<(jobs: Job[]) => Outcome[]>
  readonly #each: Transaction<(work: () => unknown) => unknown>

  constructor (db: Db) {
    // Nested inside #batch, #each is a savepoint: a throw undoes that job's writes and no other's.
    this.#each = db.transaction((work: () => unknown) => work())
    this.#batch = db.transaction((jobs: Job[]) => jobs.map((job): Outcome => {
      try {
        return { ok: true, value: this.#each(job.work) }
      } catch (error) {
        return { ok: false, error }
      }
    }))
  }

  /** Runs `work` (synchronous SQL) in the next group commit; resolves once it is committed. */
  async run<T> (work: () => T): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      if (this.#jobs.push({ work, resolve: resolve as (value: unknown) => void, reject }) === 1) setImmediate(() => { this.#flush() })
    })
  }

  #flush (): void {
    const jobs = this.#jobs
    this.#jobs = []
    let outcomes: Outcome[]
    try {
      outcomes = this.#batch.immediate(jobs)
    } catch (error) {
      for (const job of jobs) job.reject(error)
      return
    }
    outcomes.forEach((outcome, i) => {
      if (outcome.ok) jobs[i]!.resolve(outcome.value)
      else jobs[i]!.reject(outcome.error)
    })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    writes: WriteQueue
  }
}

/** Decorates the app with the write queue every write route answers through. */
export default fp(async (app) => {
  app.decorate('writes', new WriteQueue(app.db))
}, { name: 'write-queue', dependencies: ['db'] })
