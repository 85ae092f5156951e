export interface TroubleLog {
  error: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

/**
 * Says once, in the log, that requests have started failing for a reason on our side (a full
 * disk, an I/O error, another process holding the write lock too long), and once that writes
 * commit again; the 503s in between are not logged one by one.
 */
export class DatabaseTrouble {
  readonly #log: TroubleLog
  #current: { code: string, since: string } | undefined

  constructor (log: TroubleLog) {
    this.#log = log
  }

  /** A request was answered 503 `code` (STORAGE_UNAVAILABLE, DATABASE_BUSY) because of `err`. */
  report (code: string, err: unknown): void {
    if (this.#current?.code === code) return
    this.#current = { code, since: new Date().toISOString() }
    this.#log.error({ err }, `database trouble: requests are answered 503 ${code} until it clears`)
  }

  /** A write committed: the trouble, if any, is over. */
  cleared (): void {
    if (this.#current === undefined) return
    this.#log.info(this.#current, 'database trouble cleared: writes commit again')
    this.#current = undefined
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Says once when requests start failing for a reason on our side, and once when it clears. */
    dbTrouble: DatabaseTrouble
  }
}
