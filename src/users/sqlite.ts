import type { Statement } from 'better-sqlite3'
import type { Db } from '../storage/sqlite/open.js'
import { EmailTaken, UserNotFound } from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { sqliteWork, type SqliteWork } from '../storage/work.js'
import { emailKey, type User, type UsersStore } from './store.js'

export const usersSql = {
  insert:
    'INSERT INTO users (email, email_key, name, created_at, credits_updated_at) ' +
    'VALUES (@email, @emailKey, @name, @now, @now) RETURNING id, email, name, credits, created_at',
  byEmailKey: 'SELECT id FROM users WHERE email_key = @emailKey',
  byId: 'SELECT id, email, name, credits, created_at FROM users WHERE id = @id',
  page:
    'SELECT id, email, name, credits, created_at FROM users WHERE id < @before ORDER BY id DESC LIMIT @limit'
}

/** Users on SQLite. */
export class SqliteUsers implements UsersStore {
  readonly #now: () => Date
  readonly #insert: Statement
  readonly #byEmailKey: Statement
  readonly #byId: Statement
  readonly #page: Statement

  constructor (db: Db, now: () => Date) {
    this.#now = now
    this.#insert = db.prepare(usersSql.insert)
    this.#byEmailKey = db.prepare(usersSql.byEmailKey)
    this.#byId = db.prepare(usersSql.byId)
    this.#page = db.prepare(usersSql.page)
  }

  create (email: string, name: string): SqliteWork<User> {
    return sqliteWork(() => {
      // The UNIQUE index on email_key backs this check; one writer at a time makes it exact.
      const key = emailKey(email)
      if (this.#byEmailKey.get({ emailKey: key }) !== undefined) throw new EmailTaken(email)
      return this.#insert.get({ email, emailKey: key, name, now: this.#now().toISOString() }) as User
    })
  }

  async get (id: number): Promise<User> {
    const user = this.#byId.get({ id }) as User | undefined
    if (user === undefined) throw new UserNotFound(id)
    return user
  }

  async list (page: PageRequest): Promise<Page<User>> {
    return toPage(this.#page.all({ before: pageStart(page), limit: page.limit + 1 }) as User[], page.limit)
  }
}
