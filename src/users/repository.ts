import type { Statement } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { EmailTaken, UserNotFound } from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'

export interface User {
  id: number
  email: string
  name: string
  credits: number
  created_at: string
}

export const usersSql = {
  insert:
    'INSERT INTO users (email, email_key, name, created_at, credits_updated_at) ' +
    'VALUES (@email, @emailKey, @name, @now, @now) RETURNING id, email, name, credits, created_at',
  byEmailKey: 'SELECT id FROM users WHERE email_key = @emailKey',
  byId: 'SELECT id, email, name, credits, created_at FROM users WHERE id = @id',
  exists: 'SELECT 1 FROM users WHERE id = @id',
  page:
    'SELECT id, email, name, credits, created_at FROM users WHERE id < @before ORDER BY id DESC LIMIT @limit'
}

/** Users: created once per email (in any letter case), read, listed. */
export class UsersRepository {
  readonly #tx: TransactionRunner
  readonly #now: () => Date
  readonly #insert: Statement
  readonly #byEmailKey: Statement
  readonly #byId: Statement
  readonly #exists: Statement
  readonly #page: Statement

  constructor (db: Db, now: () => Date) {
    this.#tx = transactionRunner(db)
    this.#now = now
    this.#insert = db.prepare(usersSql.insert)
    this.#byEmailKey = db.prepare(usersSql.byEmailKey)
    this.#byId = db.prepare(usersSql.byId)
    this.#exists = db.prepare(usersSql.exists).pluck()
    this.#page = db.prepare(usersSql.page)
  }

  create (email: string, name: string): User {
    return this.#tx.immediate(() => {
      // The UNIQUE index on email_key backs this check.
      const emailKey = email.toLowerCase()
      if (this.#byEmailKey.get({ emailKey }) !== undefined) throw new EmailTaken(email)
      return this.#insert.get({ email, emailKey, name, now: this.#now().toISOString() }) as User
    })
  }

  get (id: number): User {
    const user = this.#byId.get({ id }) as User | undefined
    if (user === undefined) throw new UserNotFound(id)
    return user
  }

  /** Throws USER_NOT_FOUND unless the user exists. */
  assertExists (id: number): void {
    if (this.#exists.get({ id }) === undefined) throw new UserNotFound(id)
  }

  list (page: PageRequest): Page<User> {
    return toPage(this.#page.all({ before: pageStart(page), limit: page.limit + 1 }) as User[], page.limit)
  }
}
