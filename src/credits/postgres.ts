import { UserNotFound } from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import type { PgTransactions } from '../storage/postgres/transaction.js'
import { postgresWork, type PgTx, type PostgresWork } from '../storage/work.js'
import { addCredits, deductCredits, grantCeiling } from './rules.js'
import type { CreditBalance, CreditEntry, CreditKind, CreditsStore, GrantRun, GrantTrigger } from './store.js'

// Every daily grant takes this transaction-scoped advisory lock first ("grant" in ASCII), so a
// catch-up that finds no run for the day is sure none is under way in another instance either.
const GRANT_LOCK = 0x6772616e74

export const pgCreditsSql = {
  balance: 'SELECT id AS user_id, credits, credits_updated_at AS updated_at FROM users WHERE id = $1',
  // A change locks the user's row, so concurrent changes on any instance apply one after another.
  lockBalance: 'SELECT id AS user_id, credits, credits_updated_at AS updated_at FROM users WHERE id = $1 FOR UPDATE',
  // The balance and its history entry in one statement.
  applyChange:
    'WITH changed AS (UPDATE users SET credits = $3, credits_updated_at = $5 WHERE id = $1) ' +
    'INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) VALUES ($1, $2, $4, $3, $5)',
  history:
    'SELECT id, kind, delta, balance_after, created_at FROM credit_entries ' +
    'WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
  lockGrants: 'SELECT pg_advisory_xact_lock($1)',
  ranOn: 'SELECT 1 FROM daily_grant_runs WHERE day = $1 LIMIT 1',
  // The (user_id, day) key decides who is granted, across instances. The users are locked in id
  // order, and under READ COMMITTED a row that changed while we waited is judged again against
  // the ceiling as it is now, so no grant takes a balance past 2^53 − 1.
  grantAll:
    'INSERT INTO daily_grants (user_id, day, amount, created_at) ' +
    'SELECT id, $1, $2, $3 FROM users WHERE credits <= $4 ORDER BY id FOR UPDATE ' +
    'ON CONFLICT (user_id, day) DO NOTHING RETURNING user_id',
  // The granted users credited and their entries written in one statement, in user id order as
  // on SQLite.
  creditGrants:
    'WITH credited AS (UPDATE users SET credits = credits + $2::bigint, credits_updated_at = $3::text ' +
    'WHERE id = ANY ($1::bigint[]) RETURNING id, credits) ' +
    'INSERT INTO credit_entries (user_id, kind, delta, balance_after, created_at) ' +
    "SELECT id, 'daily_grant', $2::bigint, credits, $3::text FROM credited ORDER BY id",
  insertRun: 'INSERT INTO daily_grant_runs (day, trigger, users_credited, ran_at) VALUES ($1, $2, $3, $4)'
} as const

/** Credit balances on PostgreSQL; writes are Work for the request's transaction. */
export class PgCredits implements CreditsStore {
  readonly #reads: PgTransactions
  readonly #now: () => Date

  constructor (reads: PgTransactions, now: () => Date) {
    this.#reads = reads
    this.#now = now
  }

  async #balance (tx: PgTx, userId: number, text: string): Promise<CreditBalance> {
    const [balance] = await tx.query<CreditBalance>(text, [userId])
    if (balance === undefined) throw new UserNotFound(userId)
    return balance
  }

  async get (userId: number): Promise<CreditBalance> {
    return await this.#reads.run(async tx => await this.#balance(tx, userId, pgCreditsSql.balance), { readOnly: true })
  }

  add (userId: number, amount: number): PostgresWork<CreditBalance> {
    return this.#change(userId, 'add', credits => addCredits(credits, amount))
  }

  deduct (userId: number, amount: number): PostgresWork<CreditBalance> {
    return this.#change(userId, 'deduct', credits => deductCredits(credits, amount))
  }

  reset (userId: number): PostgresWork<CreditBalance> {
    return this.#change(userId, 'reset', () => 0)
  }

  setExternal (userId: number, credits: number): PostgresWork<CreditBalance> {
    return this.#change(userId, 'external_update', () => credits)
  }

  /** One balance change and its history entry, the user's row locked; `next` may refuse by throwing. */
  #change (userId: number, kind: CreditKind, next: (credits: number) => number): PostgresWork<CreditBalance> {
    return postgresWork(async tx => {
      const { credits } = await this.#balance(tx, userId, pgCreditsSql.lockBalance)
      const balanceAfter = next(credits)
      const now = this.#now().toISOString()
      await tx.query(pgCreditsSql.applyChange, [userId, kind, balanceAfter, balanceAfter - credits, now])
      return { user_id: userId, credits: balanceAfter, updated_at: now }
    })
  }

  async history (userId: number, page: PageRequest): Promise<Page<CreditEntry>> {
    return await this.#reads.run(async tx => {
      await this.#balance(tx, userId, pgCreditsSql.balance)
      return toPage(await tx.query<CreditEntry>(pgCreditsSql.history, [userId, pageStart(page), page.limit + 1]), page.limit)
    }, { readOnly: true })
  }

  grantDaily (day: string, amount: number, trigger: GrantTrigger): PostgresWork<GrantRun> {
    return postgresWork(async tx => {
      await tx.query(pgCreditsSql.lockGrants, [GRANT_LOCK])
      return await this.#grant(tx, day, amount, trigger)
    })
  }

  catchUp (day: string, amount: number): PostgresWork<GrantRun | null> {
    return postgresWork(async tx => {
      await tx.query(pgCreditsSql.lockGrants, [GRANT_LOCK])
      const ran = await tx.query(pgCreditsSql.ranOn, [day])
      return ran.length > 0 ? null : await this.#grant(tx, day, amount, 'startup')
    })
  }

  async #grant (tx: PgTx, day: string, amount: number, trigger: GrantTrigger): Promise<GrantRun> {
    const now = this.#now().toISOString()
    const granted = await tx.query<{ user_id: number }>(pgCreditsSql.grantAll, [day, amount, now, grantCeiling(amount)])
    if (granted.length > 0) await tx.query(pgCreditsSql.creditGrants, [granted.map(row => row.user_id), amount, now])
    await tx.query(pgCreditsSql.insertRun, [day, trigger, granted.length, now])
    return { day, trigger, users_credited: granted.length }
  }
}
