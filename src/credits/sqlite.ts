import type { Statement } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { sqliteWork, type SqliteWork } from '../storage/work.js'
import { UserNotFound } from '../errors.js'
import { addCredits, deductCredits, grantCeiling } from './rules.js'
import type { CreditBalance, CreditEntry, CreditKind, CreditsStore, GrantRun, GrantTrigger } from './store.js'

export const creditsSql = {
  balance: 'SELECT id AS user_id, credits, credits_updated_at AS updated_at FROM users WHERE id = @userId',
  setBalance: 'UPDATE users SET credits = @credits, credits_updated_at = @now WHERE id = @userId',
  insertEntry:
    'INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) ' +
    'VALUES (@userId, @kind, @delta, @balanceAfter, @now)',
  history:
    'SELECT id, kind, delta, balance_after, created_at FROM credit_entries ' +
    'WHERE user_id = @userId AND id < @before ORDER BY id DESC LIMIT @limit',
  ranOn: 'SELECT 1 FROM daily_grant_runs WHERE day = @day LIMIT 1',
  // The schema decides who is granted: a user already granted for the day is skipped by the key.
  grantAll:
    'INSERT INTO daily_grants (user_id, day, amount, created_at) ' +
    'SELECT id, @day, @amount, @now FROM users WHERE credits <= @ceiling ' +
    'ON CONFLICT (user_id, day) DO NOTHING RETURNING user_id',
  creditGrant:
    'UPDATE users SET credits = credits + @amount, credits_updated_at = @now WHERE id = @userId RETURNING credits',
  insertRun:
    'INSERT INTO daily_grant_runs (day, trigger, users_credited, ran_at) VALUES (@day, @trigger, @usersCredited, @now)'
}

/** Credit balances on SQLite; writes are Work for the group commit. */
export class SqliteCredits implements CreditsStore {
  readonly #now: () => Date
  readonly #balance: Statement
  readonly #setBalance: Statement
  readonly #insertEntry: Statement
  readonly #history: Statement
  readonly #ranOn: Statement
  readonly #grantAll: Statement
  readonly #creditGrant: Statement
  readonly #insertRun: Statement
  readonly #read: TransactionRunner

  constructor (db: Db, now: () => Date) {
    this.#now = now
    this.#balance = db.prepare(creditsSql.balance)
    this.#setBalance = db.prepare(creditsSql.setBalance)
    this.#insertEntry = db.prepare(creditsSql.insertEntry)
    this.#history = db.prepare(creditsSql.history)
    this.#ranOn = db.prepare(creditsSql.ranOn).pluck()
    this.#grantAll = db.prepare(creditsSql.grantAll).pluck()
    this.#creditGrant = db.prepare(creditsSql.creditGrant).pluck()
    this.#insertRun = db.prepare(creditsSql.insertRun)
    this.#read = transactionRunner(db)
  }

  #get (userId: number): CreditBalance {
    const balance = this.#balance.get({ userId }) as CreditBalance | undefined
    if (balance === undefined) throw new UserNotFound(userId)
    return balance
  }

  async get (userId: number): Promise<CreditBalance> {
    return this.#get(userId)
  }

  add (userId: number, amount: number): SqliteWork<CreditBalance> {
    return this.#change(userId, 'add', credits => addCredits(credits, amount))
  }

  deduct (userId: number, amount: number): SqliteWork<CreditBalance> {
    return this.#change(userId, 'deduct', credits => deductCredits(credits, amount))
  }

  reset (userId: number): SqliteWork<CreditBalance> {
    return this.#change(userId, 'reset', () => 0)
  }

  setExternal (userId: number, credits: number): SqliteWork<CreditBalance> {
    return this.#change(userId, 'external_update', () => credits)
  }

  /** One balance change and its history entry; `next` may refuse by throwing. */
  #change (userId: number, kind: CreditKind, next: (credits: number) => number): SqliteWork<CreditBalance> {
    return sqliteWork(() => {
      const { credits } = this.#get(userId)
      const balanceAfter = next(credits)
      const now = this.#now().toISOString()
      this.#setBalance.run({ userId, credits: balanceAfter, now })
      this.#insertEntry.run({ userId, kind, delta: balanceAfter - credits, balanceAfter, now })
      return { user_id: userId, credits: balanceAfter, updated_at: now }
    })
  }

  async history (userId: number, page: PageRequest): Promise<Page<CreditEntry>> {
    return this.#read.deferred(() => {
      this.#get(userId)
      return toPage(this.#history.all({ userId, before: pageStart(page), limit: page.limit + 1 }) as CreditEntry[], page.limit)
    })
  }

  grantDaily (day: string, amount: number, trigger: GrantTrigger): SqliteWork<GrantRun> {
    return sqliteWork(() => this.#grant(day, amount, trigger))
  }

  catchUp (day: string, amount: number): SqliteWork<GrantRun | null> {
    // Checked inside the write transaction, so two processes starting together cannot both run it.
    return sqliteWork(() => this.#ranOn.get({ day }) !== undefined ? null : this.#grant(day, amount, 'startup'))
  }

  #grant (day: string, amount: number, trigger: GrantTrigger): GrantRun {
    const now = this.#now().toISOString()
    const granted = this.#grantAll.all({ day, amount, now, ceiling: grantCeiling(amount) }) as number[]
    for (const userId of granted) {
      const balanceAfter = this.#creditGrant.get({ userId, amount, now }) as number
      this.#insertEntry.run({ userId, kind: 'daily_grant', delta: amount, balanceAfter, now })
    }
    this.#insertRun.run({ day, trigger, usersCredited: granted.length, now })
    return { day, trigger, users_credited: granted.length }
  }
}
