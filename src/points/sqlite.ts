import type { Statement } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { sqliteWork, type SqliteWork } from '../storage/work.js'
import { batchRejected, InsufficientPoints, UserNotFound } from '../errors.js'
import { byPayer, checkAdd, drawOldestFirst, takeOverDraws, type AdjustmentShare, type Lot, type NewAdd } from './ledger.js'
import type { Draw, PayerPoints, PointsStore, SpendView, StoredAdd, StoredBatch, TransactionView } from './store.js'
import { groupDraws, type DrawRow } from './draws.js'
import { formatTimestamp } from './timestamp.js'

/** Rows per multi-row INSERT of a bulk import: 600 parameters, well under SQLite's 32 766. */
const INSERT_CHUNK = 100

/** Every statement the repository runs, prepared once in its constructor. */
export const pointsSql = {
  // These two run once per add, 10 000 times in a bulk import: bound by position, not by name,
  // which costs a fifth to a third less per add (measured on a 1M-lot file). The order is the
  // columns': insertLot takes points twice (points and remaining).
  insertTransaction:
    'INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES ' +
    '(?, ?, ?, ?, ?)',
  insertLot:
    'INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES ' +
    '(?, ?, ?, ?, ?, ?)',
  // A bulk import's positive adds, INSERT_CHUNK at a time: one statement instead of a hundred.
  insertTransactions:
    'INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) VALUES ' +
    Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?)').join(', '),
  insertLots:
    'INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, points, remaining) VALUES ' +
    Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?)').join(', '),
  // Credits only: SQLite checks the INSERT row's CHECK before ON CONFLICT turns it into an update.
  creditBalance:
    'INSERT INTO payer_balances (ledger_id, payer, balance) VALUES (@ledgerId, @payer, ' +
    '@points) ON CONFLICT (ledger_id, payer) DO UPDATE SET balance = balance + ' +
    'excluded.balance',
  debitBalance:
    'UPDATE payer_balances SET balance = balance - @points WHERE ledger_id = @ledgerId AND ' +
    'payer = @payer',
  balanceOf:
    'SELECT balance FROM payer_balances WHERE ledger_id = @ledgerId AND payer = @payer',
  // The ledger's total moves with its payers' balances, in the same transactions.
  creditLedger:
    'INSERT INTO ledger_totals (ledger_id, balance) VALUES (@ledgerId, @points) ON CONFLICT ' +
    '(ledger_id) DO UPDATE SET balance = balance + excluded.balance',
  debitLedger: 'UPDATE ledger_totals SET balance = balance - @points WHERE ledger_id = @ledgerId',
  ledgerTotal: 'SELECT balance FROM ledger_totals WHERE ledger_id = @ledgerId',
  // Ledger n is user n's: its routes answer 404 for a user that does not exist.
  userExists: 'SELECT 1 FROM users WHERE id = @ledgerId',
  spendableLots:
    'SELECT transaction_id, payer, remaining FROM point_lots WHERE ledger_id = @ledgerId AND ' +
    'remaining > 0 ORDER BY ts, transaction_id',
  payerSpendableLots:
    'SELECT transaction_id, payer, remaining FROM point_lots WHERE ledger_id = @ledgerId AND ' +
    'payer = @payer AND remaining > 0 ORDER BY ts, transaction_id',
  spendFromLot:
    'UPDATE point_lots SET remaining = remaining - @points WHERE transaction_id = @lotId',
  // Positive points: a negative add takes them; negative points: it gives them back.
  shiftAdjustment:
    'UPDATE point_lots SET remaining = remaining - @points, adjusted = adjusted + @points ' +
    'WHERE transaction_id = @lotId',
  insertAdjustmentDraw:
    'INSERT INTO point_adjustment_draws (adjustment_id, lot_id, points, cause_id, created_at) ' +
    'VALUES (@adjustmentId, @lotId, @points, @causeId, @createdAt)',
  adjustedNewerLots:
    'SELECT transaction_id FROM point_lots WHERE ledger_id = @ledgerId AND payer = @payer AND ' +
    'adjusted > 0 AND ts > @ts ORDER BY ts DESC, transaction_id DESC',
  payerHasAdjustedLots:
    'SELECT 1 FROM point_lots WHERE ledger_id = @ledgerId AND payer = @payer AND adjusted > 0 LIMIT 1',
  adjustmentSharesOfLot:
    'SELECT adjustment_id, sum(points) AS points FROM point_adjustment_draws WHERE lot_id = ' +
    '@lotId GROUP BY adjustment_id HAVING sum(points) > 0 ORDER BY adjustment_id DESC',
  insertSpend:
    'INSERT INTO point_spends (ledger_id, points, created_at) VALUES (@ledgerId, @points, ' +
    '@createdAt)',
  insertSpendDraw:
    'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) VALUES (@spendId, @seq, ' +
    '@lotId, @points)',
  balances:
    'SELECT payer, balance AS points FROM payer_balances WHERE ledger_id = @ledgerId ORDER BY ' +
    'payer',
  transactionsPage:
    'SELECT t.id, t.payer, t.points, t.ts, t.created_at, l.remaining FROM point_transactions ' +
    'AS t LEFT JOIN point_lots AS l ON l.transaction_id = t.id WHERE t.ledger_id = @ledgerId ' +
    'AND t.id < @before ORDER BY t.id DESC LIMIT @limit',
  adjustmentDrawsOf:
    'SELECT d.adjustment_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, ' +
    'sum(d.points) AS points FROM point_adjustment_draws AS d JOIN point_lots AS l ON ' +
    'l.transaction_id = d.lot_id WHERE d.adjustment_id IN (SELECT value FROM json_each(@ids)) ' +
    'GROUP BY d.adjustment_id, d.lot_id HAVING sum(d.points) <> 0 ORDER BY d.adjustment_id, ' +
    'l.ts, d.lot_id',
  spendsPage:
    'SELECT id, points, created_at FROM point_spends WHERE ledger_id = @ledgerId AND id < ' +
    '@before ORDER BY id DESC LIMIT @limit',
  spendDrawsOf:
    'SELECT d.spend_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.spend_id IN (SELECT value FROM json_each(@ids)) ORDER BY d.spend_id, d.seq'
}

type Statements = { [K in keyof typeof pointsSql]: Statement }

/**
 * The points ledgers on SQLite. Each positive add is a lot; spends and negative adds draw lots
 * down in the order of ./ledger.ts, and payer_balances keeps each payer's sum (ledger_totals each
 * ledger's) so nothing here sums history, or even the ledger's payers. Writes are synchronous
 * Work, run by the group commit in a savepoint of its transaction: a thrown domain error rolls
 * back that savepoint, so a refused write leaves nothing behind.
 */
export class SqlitePoints implements PointsStore {
  readonly #now: () => Date
  readonly #s: Statements
  readonly #read: TransactionRunner

  constructor (db: Db, now: () => Date) {
    this.#now = now
    this.#s = Object.fromEntries(Object.entries(pointsSql).map(([name, sql]) => [name, db.prepare(sql)])) as Statements
    for (const name of ['balanceOf', 'ledgerTotal', 'userExists', 'adjustedNewerLots', 'payerHasAdjustedLots'] as const) this.#s[name].pluck()
    this.#read = transactionRunner(db)
  }

  #assertLedger (ledgerId: number): void {
    if (ledgerId !== 0 && this.#s.userExists.get({ ledgerId }) === undefined) throw new UserNotFound(ledgerId)
  }

  add (ledgerId: number, add: NewAdd): SqliteWork<StoredAdd> {
    return sqliteWork(() => {
      this.#assertLedger(ledgerId)
      const createdAt = this.#now().toISOString()
      const balance = (this.#s.balanceOf.get({ ledgerId, payer: add.payer }) as number | undefined) ?? 0
      checkAdd(add, balance, () => this.#total(ledgerId))
      const id = this.#storeAdd(ledgerId, add, createdAt, true)
      this.#moveBalance(ledgerId, add.payer, add.points)
      this.#moveTotal(ledgerId, add.points)
      return { id, payer: add.payer, points: add.points, timestamp: formatTimestamp(add.ts) }
    })
  }

  /**
   * The balance rows are written once per payer at the end rather than once per add, and
   * positive adds with no draws to take over (the bulk of an import) are inserted INSERT_CHUNK
   * rows a statement.
   */
  addBatch (ledgerId: number, adds: Iterable<NewAdd>): SqliteWork<StoredBatch> {
    return sqliteWork(() => {
      this.#assertLedger(ledgerId)
      const createdAt = this.#now().toISOString()
      const payers = new Map<string, { balance: number, before: number, adjusted: boolean }>()
      const before = this.#total(ledgerId)
      let total = before
      const totalNow = (): number => total
      // Positive adds checked but not yet inserted: a full chunk goes in one statement.
      const plain: NewAdd[] = []
      let last = 0
      const insertPlain = (): void => {
        if (plain.length === INSERT_CHUNK) last = this.#insertChunk(ledgerId, plain, createdAt)
        else for (const add of plain) last = this.#storeAdd(ledgerId, add, createdAt, false)
        plain.length = 0
      }
      let index = 0
      try {
        for (const add of adds) {
          let payer = payers.get(add.payer)
          if (payer === undefined) {
            const balance = (this.#s.balanceOf.get({ ledgerId, payer: add.payer }) as number | undefined) ?? 0
            // Only a payer with adjusted lots can have draws for a backdated add to take over.
            const adjusted = this.#s.payerHasAdjustedLots.get({ ledgerId, payer: add.payer }) !== undefined
            payer = { balance, before: balance, adjusted }
            payers.set(add.payer, payer)
          }
          checkAdd(add, payer.balance, totalNow)
          if (add.points > 0 && !payer.adjusted) {
            plain.push(add)
            if (plain.length === INSERT_CHUNK) insertPlain()
          } else {
            insertPlain()
            last = this.#storeAdd(ledgerId, add, createdAt, true)
            payer.adjusted = true
          }
          payer.balance += add.points
          total += add.points
          index++
        }
        insertPlain()
      } catch (err) {
        throw batchRejected(index, err)
      }
      for (const [name, payer] of payers) this.#moveBalance(ledgerId, name, payer.balance - payer.before)
      this.#moveTotal(ledgerId, total - before)
      // Nothing else inserts into point_transactions in this transaction: the ids are consecutive.
      return { count: index, first_id: last - index + 1, last_id: last }
    })
  }

  /**
   * Stores an add checkAdd accepted and moves points between lots; the caller moves the balance
   * rows. `mayBeAdjusted` false: the caller knows no lot of this payer has points a negative add
   * took, so a positive add has no draws to take over.
   */
  #storeAdd (ledgerId: number, add: NewAdd, createdAt: string, mayBeAdjusted: boolean): number {
    const id = Number(this.#s.insertTransaction.run(ledgerId, add.payer, add.points, add.ts, createdAt).lastInsertRowid)
    if (add.points > 0) {
      this.#s.insertLot.run(id, ledgerId, add.payer, add.ts, add.points, add.points)
      if (mayBeAdjusted) this.#moveAdjustmentsOnto(ledgerId, id, add, createdAt)
    } else {
      this.#adjustOldestFirst(ledgerId, id, add, createdAt)
    }
    return id
  }

  /** #storeAdd of INSERT_CHUNK positive adds with no draws to take over, in two statements. */
  #insertChunk (ledgerId: number, adds: NewAdd[], createdAt: string): number {
    const rows: unknown[] = []
    for (const add of adds) rows.push(ledgerId, add.payer, add.points, add.ts, createdAt)
    // One INSERT of many rows gives them consecutive ids (max(id) + 1 each), ending at this one.
    const last = Number(this.#s.insertTransactions.run(rows).lastInsertRowid)
    const lots: unknown[] = []
    let id = last - adds.length
    for (const add of adds) lots.push(++id, ledgerId, add.payer, add.ts, add.points, add.points)
    this.#s.insertLots.run(lots)
    return last
  }

  /** A payer's balance row moves by `points`; the payer's first add creates it. */
  #moveBalance (ledgerId: number, payer: string, points: number): void {
    if (points >= 0) this.#s.creditBalance.run({ ledgerId, payer, points })
    else this.#s.debitBalance.run({ ledgerId, payer, points: -points })
  }

  /** The ledger's total row moves by `points`; the ledger's first add creates it. */
  #moveTotal (ledgerId: number, points: number): void {
    if (points >= 0) this.#s.creditLedger.run({ ledgerId, points })
    else this.#s.debitLedger.run({ ledgerId, points: -points })
  }

  /** A negative add takes its points from the payer's oldest lots that still have points. */
  #adjustOldestFirst (ledgerId: number, adjustmentId: number, add: NewAdd, createdAt: string): void {
    const lots = this.#s.payerSpendableLots.iterate({ ledgerId, payer: add.payer }) as IterableIterator<Lot>
    for (const take of drawOldestFirst(lots, -add.points)) {
      this.#s.shiftAdjustment.run({ lotId: take.lotId, points: take.points })
      this.#s.insertAdjustmentDraw.run({ adjustmentId, lotId: take.lotId, points: take.points, causeId: adjustmentId, createdAt })
    }
  }

  /** The draws of negative adds on this payer's lots newer than `ts`: newest lots, then newest adds, first. */
  * #sharesNewerThan (ledgerId: number, payer: string, ts: string): Generator<AdjustmentShare> {
    for (const lotId of this.#s.adjustedNewerLots.all({ ledgerId, payer, ts }) as number[]) {
      for (const share of this.#s.adjustmentSharesOfLot.all({ lotId }) as Array<{ adjustment_id: number, points: number }>) {
        yield { lotId, adjustmentId: share.adjustment_id, points: share.points }
      }
    }
  }

  /** A backdated add takes over what negative adds drew from newer lots (takeOverDraws). */
  #moveAdjustmentsOnto (ledgerId: number, lotId: number, add: NewAdd, createdAt: string): void {
    for (const move of takeOverDraws(this.#sharesNewerThan(ledgerId, add.payer, add.ts), add.points)) {
      this.#s.shiftAdjustment.run({ lotId: move.fromLotId, points: -move.points })
      this.#s.shiftAdjustment.run({ lotId, points: move.points })
      const row = { adjustmentId: move.adjustmentId, causeId: lotId, createdAt }
      this.#s.insertAdjustmentDraw.run({ ...row, lotId: move.fromLotId, points: -move.points })
      this.#s.insertAdjustmentDraw.run({ ...row, lotId, points: move.points })
    }
  }

  spend (ledgerId: number, points: number, dryRun: boolean): SqliteWork<PayerPoints[]> {
    return sqliteWork(() => {
      this.#assertLedger(ledgerId)
      const total = this.#total(ledgerId)
      if (total < points) throw new InsufficientPoints(points, total)
      const takes = drawOldestFirst(this.#s.spendableLots.iterate({ ledgerId }) as IterableIterator<Lot>, points)
      const result = byPayer(takes)
      if (dryRun) return result
      const spendId = Number(this.#s.insertSpend.run({ ledgerId, points, createdAt: this.#now().toISOString() }).lastInsertRowid)
      takes.forEach((take, i) => {
        this.#s.spendFromLot.run({ lotId: take.lotId, points: take.points })
        this.#s.insertSpendDraw.run({ spendId, seq: i + 1, lotId: take.lotId, points: take.points })
      })
      for (const { payer, points } of result) this.#s.debitBalance.run({ ledgerId, payer, points: -points })
      this.#s.debitLedger.run({ ledgerId, points })
      return result
    })
  }

  /** The sum of the ledger's payer balances, from its maintained row (none yet: 0). */
  #total (ledgerId: number): number {
    return (this.#s.ledgerTotal.get({ ledgerId }) as number | undefined) ?? 0
  }

  async balances (ledgerId: number): Promise<PayerPoints[]> {
    // Two reads, no transaction: a user, once created, is never removed (but by a flush).
    this.#assertLedger(ledgerId)
    return this.#s.balances.all({ ledgerId }) as PayerPoints[]
  }

  async listTransactions (ledgerId: number, page: PageRequest): Promise<Page<TransactionView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.transactionsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, payer: string, points: number, ts: string, created_at: string, remaining: number | null
      }>, page.limit)
      const negatives = items.filter(row => row.points < 0).map(row => row.id)
      const draws = negatives.length > 0
        ? groupDraws(this.#s.adjustmentDrawsOf.all({ ids: JSON.stringify(negatives) }) as DrawRow[])
        : new Map<number, Draw[]>()
      return {
        items: items.map(row => ({
          id: row.id,
          payer: row.payer,
          points: row.points,
          timestamp: formatTimestamp(row.ts),
          created_at: row.created_at,
          remaining: row.remaining,
          drawn_from: draws.get(row.id) ?? []
        })),
        next_cursor: nextCursor
      }
    })
  }

  async listSpends (ledgerId: number, page: PageRequest): Promise<Page<SpendView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.spendsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, points: number, created_at: string
      }>, page.limit)
      const draws = items.length > 0
        ? groupDraws(this.#s.spendDrawsOf.all({ ids: JSON.stringify(items.map(row => row.id)) }) as DrawRow[])
        : new Map<number, Draw[]>()
      return {
        // A spend always draws from at least one lot.
        items: items.map(row => ({ ...row, drawn_from: draws.get(row.id)! })),
        next_cursor: nextCursor
      }
    })
  }
}
