import { join } from 'node:path'
import type pg from 'pg'
import { PgPoints } from '../../src/points/postgres.js'
import { SqlitePoints } from '../../src/points/sqlite.js'
import type { DrawOrder } from '../../src/points/ledger.js'
import type { PointsStore } from '../../src/points/store.js'
import type { Page, PageRequest } from '../../src/storage/page.js'
import { migratePostgres } from '../../src/storage/postgres/migrate.js'
import { createPool } from '../../src/storage/postgres/pool.js'
import { PgTransactions, type Isolation } from '../../src/storage/postgres/transaction.js'
import { migrate } from '../../src/storage/sqlite/migrate.js'
import { openDatabase, type Db } from '../../src/storage/sqlite/open.js'
import type { Work } from '../../src/storage/work.js'
import { freshPostgres } from '../postgres.js'

// The points store on each engine, fresh, for tests that hold them side by side. Each engine's
// writes run as its storage runs them: SQLite's synchronously in an IMMEDIATE transaction,
// PostgreSQL's in a PgTransactions transaction.

interface Teardown { teardown: (fn: () => unknown) => void }

export interface Engine {
  points: PointsStore
  /** Runs a write of `points` in one transaction of its engine. */
  write: <R>(work: Work<R>) => Promise<R>
  /** Creates user `id`, whose ledger is ledger `id`. */
  createUser: (id: number) => Promise<void>
  /** Every row of the points tables, each table in its key's order. */
  rows: () => Promise<Record<string, unknown[]>>
}

/** The points tables and their keys: the rows both engines must hold alike. */
const TABLES: Record<string, string> = {
  point_transactions: 'id',
  point_lots: 'transaction_id',
  payer_balances: 'ledger_id, payer',
  ledger_totals: 'ledger_id',
  point_spends: 'id',
  point_spend_draws: 'spend_id, seq',
  point_adjustment_draws: 'id',
  point_holds: 'id',
  point_hold_draws: 'hold_id, seq',
  point_reversals: 'id',
  point_reversal_draws: 'reversal_id, seq',
  point_expirations: 'id',
  point_balance_history: 'ledger_id, payer, at'
}
const selectAll = (table: string): string => `SELECT * FROM ${table} ORDER BY ${TABLES[table]!}`

const USER = 'INSERT INTO users (id, email, email_key, name, credits, created_at, credits_updated_at) VALUES '

export async function sqliteEngine (dir: string, name: string, now: () => Date, drawOrder: DrawOrder = 'timestamp'): Promise<Engine & { db: Db }> {
  const db = openDatabase(join(dir, `${name}.db`))
  await migrate(db)
  const tx = db.transaction((run: () => unknown) => run())
  return {
    db,
    points: new SqlitePoints(db, now, drawOrder),
    write: async work => {
      if (work.engine !== 'sqlite') throw new Error('a PostgreSQL work given to SQLite')
      return tx.immediate(work.run) as ReturnType<typeof work.run>
    },
    createUser: async id => {
      db.prepare(`${USER}(?, ?, ?, 'User', 0, ?, ?)`).run(id, `u${id}@example.com`, `u${id}@example.com`, now().toISOString(), now().toISOString())
    },
    rows: async () => Object.fromEntries(Object.keys(TABLES).map(table => [table, db.prepare(selectAll(table)).all()]))
  }
}

export interface PgEngine extends Engine {
  pool: pg.Pool
  /** The writes' transactions. */
  transactions: PgTransactions
}

/** A fresh schema, migrated, and a pool on it: both gone when `t` ends. */
export async function pgEngine (t: Teardown, now: () => Date, options: { size?: number, isolation?: Isolation, maxAttempts?: number, drawOrder?: DrawOrder } = {}): Promise<PgEngine> {
  const { url, poolSize } = await freshPostgres(t)
  const pool = createPool({ url, size: options.size ?? poolSize })
  t.teardown(() => pool.end())
  await migratePostgres(pool)
  const isolation = options.isolation ?? 'read_committed'
  const transactions = new PgTransactions(pool, isolation, { maxAttempts: options.maxAttempts ?? 10 })
  // Reads see one snapshot, as SQLite's read transactions do.
  const reads = new PgTransactions(pool, isolation === 'serializable' ? 'serializable' : 'repeatable_read')
  return {
    pool,
    transactions,
    points: new PgPoints(reads, now, options.drawOrder),
    write: async work => {
      if (work.engine !== 'postgres') throw new Error('a SQLite work given to PostgreSQL')
      return await transactions.run(work.run)
    },
    createUser: async id => {
      await pool.query(`${USER}($1, $2, $2, 'User', 0, $3, $3)`, [id, `u${id}@example.com`, now().toISOString()])
    },
    rows: async () => {
      const rows: Record<string, unknown[]> = {}
      for (const table of Object.keys(TABLES)) rows[table] = (await pool.query(selectAll(table))).rows
      return rows
    }
  }
}

/** What a call answered, or the domain error it refused with; anything else (a bug) throws. */
export async function outcome (call: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await call() }
  } catch (err) {
    const { statusCode, code, message, index } = err as { statusCode?: number, code: string, message: string, index?: number }
    if (statusCode === undefined) throw err
    return { statusCode, code, message, ...(index !== undefined && { index }) }
  }
}

/** Every page `list` answers, from the newest, at page size `limit`. */
async function allPages (list: (page: PageRequest) => Promise<Page<unknown>>, limit: number): Promise<unknown[]> {
  const all: unknown[] = []
  let cursor: number | undefined
  for (;;) {
    const page = await list({ cursor, limit })
    all.push(page)
    if (page.next_cursor === null) return all
    cursor = page.next_cursor
  }
}

/** Every page of a ledger's history, at page size `limit`, and its balances: what a client can read. */
export async function history (points: PointsStore, ledgerId: number, limit: number): Promise<unknown> {
  const pages = async (list: (page: PageRequest) => Promise<Page<unknown>>): Promise<unknown[]> => await allPages(list, limit)
  return {
    balances: await outcome(async () => await points.balances(ledgerId)),
    transactions: await outcome(async () => await pages(async page => await points.listTransactions(ledgerId, page))),
    spends: await outcome(async () => await pages(async page => await points.listSpends(ledgerId, page)))
  }
}

/** history(), and what issue 13 added: holds (all, pending), expirations, balances in detail, each spend's reversals. */
export async function lifeHistory (points: PointsStore, ledgerId: number, limit: number): Promise<unknown> {
  const pages = async (list: (page: PageRequest) => Promise<Page<unknown>>): Promise<unknown[]> => await allPages(list, limit)
  const spends = await outcome(async () => (await points.listSpends(ledgerId, { limit: 1000 })).items.map(spend => spend.id))
  const spendIds = 'ok' in (spends as object) ? (spends as { ok: number[] }).ok : []
  const reversals: unknown[] = []
  for (const id of spendIds) reversals.push(await outcome(async () => await pages(async page => await points.listReversals(ledgerId, id, page))))
  return {
    ...(await history(points, ledgerId, limit) as object),
    holds: await outcome(async () => await pages(async page => await points.listHolds(ledgerId, undefined, page))),
    pending: await outcome(async () => await pages(async page => await points.listHolds(ledgerId, 'pending', page))),
    expirations: await outcome(async () => await pages(async page => await points.listExpirations(ledgerId, page))),
    details: await outcome(async () => await points.balanceDetails(ledgerId)),
    reversals
  }
}
