import type { Transaction } from 'better-sqlite3'
import { DatabaseBusy, isBusy } from '../../errors.js'
import type { Db } from './open.js'
import type { DatabaseTrouble } from '../trouble.js'

interface Job {
  work: () => unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
  /** When it was queued (Date.now()): how long it has waited for another process's write lock. */
  since: number
}

/** Thrown out of a batch whose transaction SQLite rolled back whole: these jobs run again. */
class RunAgain {
  constructor (readonly jobs: Job[]) {}
}

type Settled = Array<{ job: Job, ok: true, value: unknown } | { job: Job, ok: false, error: unknown }>

/**
 * Group commit. The commit is what a write costs most (an IMMEDIATE transaction and its commit
 * take about as long as a whole HTTP request), so writes submitted in the same turn of the event
 * loop run one after another in ONE transaction, each in its own savepoint, and every one is
 * answered only after the shared COMMIT.
 *
 * - A write that throws rolls back its own savepoint only.
 * - Some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, ...) make SQLite roll back the whole
 *   transaction, not the savepoint (better-sqlite3's "Caveats"). That write is answered with its
 *   own error, and the others of the batch, whose writes went with the rollback, run again in a
 *   fresh transaction: what each is answered is what the file holds.
 * - If the commit itself fails, every write of the batch fails and none is answered as done.
 * - Another process holding the write lock (busy_timeout is 0 on the server's connection) is
 *   waited for here, asynchronously, so reads and probes keep being answered; after `lockWaitMs`
 *   the write is answered 503 DATABASE_BUSY with nothing changed.
 */
export class WriteQueue {
  #jobs: Job[] = []
  #draining = false
  #pause = 1
  #slowestMs = 0
  readonly #db: Db
  readonly #trouble: DatabaseTrouble
  readonly #lockWaitMs: number
  readonly #batch: Transaction<(jobs: Job[]) => Settled>

  constructor (db: Db, trouble: DatabaseTrouble, lockWaitMs = 5000) {
    this.#db = db
    this.#trouble = trouble
    this.#lockWaitMs = lockWaitMs
    // Nested inside #batch, #each is a savepoint: a throw undoes that job's writes and no other's.
    const each = db.transaction((work: () => unknown) => work())
    this.#batch = db.transaction((jobs: Job[]): Settled => {
      const settled: Settled = []
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i]!
        try {
          settled.push({ job, ok: true, value: each(job.work) })
        } catch (error) {
          if (this.#db.inTransaction) {
            settled.push({ job, ok: false, error })
            continue
          }
          // SQLite rolled back the whole transaction: the jobs before this one lost their
          // writes, the ones after it have not run. This one fails; the others run again.
          job.reject(error)
          throw new RunAgain([...settled.map(s => s.job), ...jobs.slice(i + 1)])
        }
      }
      return settled
    })
  }

  /**
   * The longest a committed batch held the event loop, in ms: its writes, its COMMIT and any WAL
   * checkpoint SQLite ran with it. Logged on close; `npm run bench` reports it.
   */
  get slowestCommitMs (): number {
    return this.#slowestMs
  }

  /** Runs `work` (synchronous SQL) in the next group commit; resolves once it is committed. */
  async run<T> (work: () => T): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      this.#jobs.push({ work, resolve: resolve as (value: unknown) => void, reject, since: Date.now() })
      if (!this.#draining) {
        this.#draining = true
        setImmediate(() => { this.#drain() })
      }
    })
  }

  /**
   * Commits the queued jobs. While another process holds the write lock it tries again after a
   * growing pause, and jobs queued meanwhile join the batch, so writes keep their arrival order.
   */
  #drain (): void {
    while (this.#jobs.length > 0) {
      const jobs = this.#jobs
      this.#jobs = []
      const waiting = this.#commit(jobs)
      if (waiting.length === 0) continue
      // One pass: a long wait can queue thousands of jobs, and this runs every few ms meanwhile.
      const now = Date.now()
      const still: Job[] = []
      for (const job of waiting) {
        if (now - job.since >= this.#lockWaitMs) job.reject(new DatabaseBusy())
        else still.push(job)
      }
      this.#jobs = still.concat(this.#jobs)
      setTimeout(() => { this.#drain() }, this.#pause)
      this.#pause = Math.min(this.#pause * 2, 20)
      return
    }
    this.#pause = 1
    this.#draining = false
  }

  /** Runs `jobs` in one transaction and settles them; answers those still waiting for the lock. */
  #commit (jobs: Job[]): Job[] {
    let pending = jobs
    for (;;) {
      let settled: Settled
      const started = performance.now()
      try {
        settled = this.#batch.immediate(pending)
        this.#slowestMs = Math.max(this.#slowestMs, performance.now() - started)
      } catch (error) {
        if (error instanceof RunAgain) {
          if (error.jobs.length === 0) return []
          pending = error.jobs
          continue
        }
        // BEGIN IMMEDIATE (or the commit) met another process's lock: nothing was written.
        if (isBusy(error)) return pending
        for (const job of pending) job.reject(error)
        return []
      }
      this.#trouble.cleared()
      for (const s of settled) {
        if (s.ok) s.job.resolve(s.value)
        else s.job.reject(s.error)
      }
      return []
    }
  }
}
