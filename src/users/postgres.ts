import { EmailTaken, UserNotFound } from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import type { PgTransactions } from '../storage/postgres/transaction.js'
import { postgresWork, type PostgresWork } from '../storage/work.js'
import { emailKey, type User, type UsersStore } from './store.js'

export const pgUsersSql = {
  // The UNIQUE on email_key decides: of two instances creating one email at once, the second
  // waits for the first to commit and then inserts nothing. NOT EXISTS answers the plain case
  // before the identity default is drawn, so a refused email leaves no gap in the ids and they
  // run as SQLite's do.
  insert:
    'INSERT INTO users (email, email_key, name, created_at, credits_updated_at) ' +
    'SELECT $1, $2, $3, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM users WHERE email_key = $2) ' +
    'ON CONFLICT (email_key) DO NOTHING RETURNING id, email, name, credits, created_at',
  byId: 'SELECT id, email, name, credits, created_at FROM users WHERE id = $1',
  page: 'SELECT id, email, name, credits, created_at FROM users WHERE id < $1 ORDER BY id DESC LIMIT $2'
} as const

/** Users on PostgreSQL. */
export class PgUsers implements UsersStore {
  readonly #reads: PgTransactions
  readonly #now: () => Date

  constructor (reads: PgTransactions, now: () => Date) {
    this.#reads = reads
    this.#now = now
  }

  create (email: string, name: string): PostgresWork<User> {
    return postgresWork(async tx => {
      const [user] = await tx.query<User>(pgUsersSql.insert, [email, emailKey(email), name, this.#now().toISOString()])
      if (user === undefined) throw new EmailTaken(email)
      return user
    })
  }

  async get (id: number): Promise<User> {
    const [user] = await this.#reads.run(async tx => await tx.query<User>(pgUsersSql.byId, [id]), { readOnly: true })
    if (user === undefined) throw new UserNotFound(id)
    return user
  }

  async list (page: PageRequest): Promise<Page<User>> {
    const rows = await this.#reads.run(async tx => await tx.query<User>(pgUsersSql.page, [pageStart(page), page.limit + 1]), { readOnly: true })
    return toPage(rows, page.limit)
  }
}
