import type { Statement, Transaction } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { CreditsTooLarge, InsufficientCredits, UserNotFound } from '../errors.js'

export type CreditKind = 'add' | 'deduct' | 'reset' | 'external_update' | 'daily_grant'
export type GrantTrigger = 'schedule' | 'startup' | 'command'

export interface CreditBalance {
  user_id: number
  credits: number
  updated_at: string
}

export interface CreditEntry {
  id: number
  kind: CreditKind
  delta: number
  balance_after: number
  created_at: string
}

export interface GrantRun {
  day: string
  trigger: GrantTrigger
  users_credited: number
}

const MAX = Number.MAX_SAFE_INTEGER

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
    'SELECT id, @day, @amount, @now FROM users WHERE credits <= @max - @amount ' +
    'ON CONFLICT (user_id, day) DO NOTHING RETURNING user_id',
  creditGrant:
    'UPDATE users SET credits = credits + @amount, credits_updated_at = @now WHERE id = @userId RETURNING credits',
  insertRun:
    'INSERT INTO daily_grant_runs (day, trigger, users_credited, ran_at) VALUES (@day, @trigger, @usersCredited, @now)'
}

/**
 * Credit balances. Every change updates the balance and writes one history entry in the same
 * IMMEDIATE transaction, so a balance always equals the sum of its entries.
 */
export class CreditsRepository {
  readonly #db: Db
  readonly #now: () => Date
  readonly #balance: Statement
  readonly #setBalance: Statement
  readonly #insertEntry: Statement
  readonly #history: Statement
  readonly #ranOn: Statement
  readonly #grantAll: Statement
  readonly #creditGrant: Statement
  readonly #insertRun: Statement
  readonly #tx: TransactionRunner
  readonly #changeTx: Transaction<(userId: number, kind: CreditKind, next: (credits: number) => number) => CreditBalance>

  constructor (db: Db, now: () => Date) {
    this.#db = db
    this.#now = now
    this.#balance = db.prepare(creditsSql.balance)
    this.#setBalance = db.prepare(creditsSql.setBalance)
    this.#insertEntry = db.prepare(creditsSql.insertEntry)
    this.#history = db.prepare(creditsSql.history)
    this.#ranOn = db.prepare(creditsSql.ranOn).pluck()
    this.#grantAll = db.prepare(creditsSql.grantAll).pluck()
    this.#creditGrant = db.prepare(creditsSql.creditGrant).pluck()
    this.#insertRun = db.prepare(creditsSql.insertRun)
    this.#tx = transactionRunner(db)
    this.#changeTx = db.transaction((userId: number, kind: CreditKind, next: (credits: number) => number) => {
      const { credits } = this.get(userId)
      const balanceAfter = next(credits)
      const now = this.#now().toISOString()
      this.#setBalance.run({ userId, credits: balanceAfter, now })
      this.#insertEntry.run({ userId, kind, delta: balanceAfter - credits, balanceAfter, now })
      return { user_id: userId, credits: balanceAfter, updated_at: now }
    })
  }

  get (userId: number): CreditBalance {
    const balance = this.#balance.get({ userId }) as CreditBalance | undefined
    if (balance === undefined) throw new UserNotFound(userId)
    return balance
  }

  add (userId: number, amount: number): CreditBalance {
    return this.#change(userId, 'add', credits => {
      if (credits + amount > MAX) throw new CreditsTooLarge()
      return credits + amount
    })
  }

  deduct (userId: number, amount: number): CreditBalance {
    return this.#change(userId, 'deduct', credits => {
      if (credits < amount) throw new InsufficientCredits(amount, credits)
      return credits - amount
    })
  }

  reset (userId: number): CreditBalance {
    return this.#change(userId, 'reset', () => 0)
  }

  /** Sets the balance to what an outside system says it is; the entry records the difference. */
  setExternal (userId: number, credits: number): CreditBalance {
    return this.#change(userId, 'external_update', () => credits)
  }

  /** One balance change and its history entry; `next` may refuse by throwing. */
  #change (userId: number, kind: CreditKind, next: (credits: number) => number): CreditBalance {
    return this.#changeTx.immediate(userId, kind, next)
  }

  history (userId: number, page: PageRequest): Page<CreditEntry> {
    return this.#tx.deferred(() => {
      this.get(userId)
      return toPage(this.#history.all({ userId, before: pageStart(page), limit: page.limit + 1 }) as CreditEntry[], page.limit)
    })
  }

  /** Whether any grant ran for this UTC day ('YYYY-MM-DD'). */
  ranOn (day: string): boolean {
    return this.#ranOn.get({ day }) !== undefined
  }

  /**
   * Grants `amount` to every user not yet granted on `day`, all in one transaction: at most once
   * per user and day even with several processes or a crash mid-way. A user whose balance would
   * pass 2^53−1 is skipped rather than stopping everyone's grant.
   */
  grantDaily (day: string, amount: number, trigger: GrantTrigger): GrantRun {
    return this.#db.transaction(() => this.#grant(day, amount, trigger)).immediate()
  }

  /** The start-up catch-up: grants for `day` only if no grant ran that day yet; null if one had. */
  catchUp (day: string, amount: number): GrantRun | null {
    // Checked inside the write transaction, so two processes starting together cannot both run it.
    return this.#db.transaction(() => this.ranOn(day) ? null : this.#grant(day, amount, 'startup')).immediate()
  }

  #grant (day: string, amount: number, trigger: GrantTrigger): GrantRun {
    const now = this.#now().toISOString()
    const granted = this.#grantAll.all({ day, amount, now, max: MAX }) as number[]
    for (const userId of granted) {
      const balanceAfter = this.#creditGrant.get({ userId, amount, now }) as number
      this.#insertEntry.run({ userId, kind: 'daily_grant', delta: amount, balanceAfter, now })
    }
    this.#insertRun.run({ day, trigger, usersCredited: granted.length, now })
    return { day, trigger, users_credited: granted.length }
  }
}
