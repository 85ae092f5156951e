import type { Statement, Transaction } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { BalanceTooLarge, batchRejected, InsufficientPayerPoints, InsufficientPoints } from '../errors.js'
import { formatTimestamp } from './timestamp.js'

export interface NewAdd {
  payer: string
  points: number
  /** Stored form, from parseTimestamp. */
  ts: string
}

export interface StoredAdd {
  id: number
  payer: string
  points: number
  timestamp: string
}

export interface StoredBatch {
  count: number
  first_id: number
  last_id: number
}

export interface PayerPoints {
  payer: string
  points: number
}

export interface Draw {
  transaction_id: number
  payer: string
  timestamp: string
  points: number
}

interface LotRow { transaction_id: number, payer: string, remaining: number }
interface DrawRow { owner_id: number, transaction_id: number, payer: string, ts: string, points: number }

const MAX = Number.MAX_SAFE_INTEGER
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

function draw (row: DrawRow): Draw {
  return { transaction_id: row.transaction_id, payer: row.payer, timestamp: formatTimestamp(row.ts), points: row.points }
}

function groupDraws (rows: DrawRow[]): Map<number, Draw[]> {
  const byOwner = new Map<number, Draw[]>()
  for (const row of rows) {
    const list = byOwner.get(row.owner_id) ?? []
    list.push(draw(row))
    byOwner.set(row.owner_id, list)
  }
  return byOwner
}

/**
 * The points ledgers. Each positive add is a lot; spends and negative adds draw lots down oldest
 * first (timestamp, then arrival), and payer_balances keeps each payer's sum (ledger_totals each
 * ledger's) so nothing here sums history, or even the ledger's payers. Every write is one
 * IMMEDIATE transaction; a thrown domain error rolls it back whole.
 */
export class PointsRepository {
  readonly #now: () => Date
  readonly #insertTransaction: Statement
  readonly #insertLot: Statement
  readonly #insertTransactions: Statement
  readonly #insertLots: Statement
  readonly #creditBalance: Statement
  readonly #debitBalance: Statement
  readonly #balanceOf: Statement
  readonly #creditLedger: Statement
  readonly #debitLedger: Statement
  readonly #ledgerTotal: Statement
  readonly #spendableLots: Statement
  readonly #payerSpendableLots: Statement
  readonly #spendFromLot: Statement
  readonly #shiftAdjustment: Statement
  readonly #insertAdjustmentDraw: Statement
  readonly #adjustedNewerLots: Statement
  readonly #adjustmentSharesOfLot: Statement
  readonly #payerHasAdjustedLots: Statement
  readonly #insertSpend: Statement
  readonly #insertSpendDraw: Statement
  readonly #balances: Statement
  readonly #transactionsPage: Statement
  readonly #adjustmentDrawsOf: Statement
  readonly #spendsPage: Statement
  readonly #spendDrawsOf: Statement
  // Transaction functions are built once, like the statements: a request only calls them.
  readonly #addTx: Transaction<(ledgerId: number, add: NewAdd) => StoredAdd>
  readonly #addBatchTx: Transaction<(ledgerId: number, adds: Iterable<NewAdd>) => StoredBatch>
  readonly #spendTx: Transaction<(ledgerId: number, points: number, dryRun: boolean) => PayerPoints[]>
  readonly #tx: TransactionRunner

  constructor (db: Db, now: () => Date) {
    this.#now = now
    this.#insertTransaction = db.prepare(pointsSql.insertTransaction)
    this.#insertLot = db.prepare(pointsSql.insertLot)
    this.#insertTransactions = db.prepare(pointsSql.insertTransactions)
    this.#insertLots = db.prepare(pointsSql.insertLots)
    this.#creditBalance = db.prepare(pointsSql.creditBalance)
    this.#debitBalance = db.prepare(pointsSql.debitBalance)
    this.#balanceOf = db.prepare(pointsSql.balanceOf).pluck()
    this.#creditLedger = db.prepare(pointsSql.creditLedger)
    this.#debitLedger = db.prepare(pointsSql.debitLedger)
    this.#ledgerTotal = db.prepare(pointsSql.ledgerTotal).pluck()
    this.#spendableLots = db.prepare(pointsSql.spendableLots)
    this.#payerSpendableLots = db.prepare(pointsSql.payerSpendableLots)
    this.#spendFromLot = db.prepare(pointsSql.spendFromLot)
    this.#shiftAdjustment = db.prepare(pointsSql.shiftAdjustment)
    this.#insertAdjustmentDraw = db.prepare(pointsSql.insertAdjustmentDraw)
    this.#adjustedNewerLots = db.prepare(pointsSql.adjustedNewerLots).pluck()
    this.#adjustmentSharesOfLot = db.prepare(pointsSql.adjustmentSharesOfLot)
    this.#payerHasAdjustedLots = db.prepare(pointsSql.payerHasAdjustedLots).pluck()
    this.#insertSpend = db.prepare(pointsSql.insertSpend)
    this.#insertSpendDraw = db.prepare(pointsSql.insertSpendDraw)
    this.#balances = db.prepare(pointsSql.balances)
    this.#transactionsPage = db.prepare(pointsSql.transactionsPage)
    this.#adjustmentDrawsOf = db.prepare(pointsSql.adjustmentDrawsOf)
    this.#spendsPage = db.prepare(pointsSql.spendsPage)
    this.#spendDrawsOf = db.prepare(pointsSql.spendDrawsOf)
    this.#tx = transactionRunner(db)
    this.#addTx = db.transaction((ledgerId: number, add: NewAdd) => this.#addInTransaction(ledgerId, add))
    this.#addBatchTx = db.transaction((ledgerId: number, adds: Iterable<NewAdd>) => this.#addBatchInTransaction(ledgerId, adds))
    this.#spendTx = db.transaction((ledgerId: number, points: number, dryRun: boolean) => this.#spendInTransaction(ledgerId, points, dryRun))
  }

  /** Stores an add. A negative add draws its payer's oldest points down, or is refused whole. */
  add (ledgerId: number, add: NewAdd): StoredAdd {
    return this.#addTx.immediate(ledgerId, add)
  }

  #addInTransaction (ledgerId: number, add: NewAdd): StoredAdd {
    const createdAt = this.#now().toISOString()
    const balance = (this.#balanceOf.get({ ledgerId, payer: add.payer }) as number | undefined) ?? 0
    this.#checkAdd(add, balance, () => this.#total(ledgerId))
    const id = this.#storeAdd(ledgerId, add, createdAt, true)
    this.#moveBalance(ledgerId, add.payer, add.points)
    this.#moveTotal(ledgerId, add.points)
    return { id, payer: add.payer, points: add.points, timestamp: formatTimestamp(add.ts) }
  }

  /**
   * Stores `adds` in order, each exactly as add() would, in one transaction: all or none. An add
   * refused (by a rule here, or by the iterator, which may check each add as it hands it over)
   * refuses the whole batch: BATCH_REJECTED with its index. The adds share one created_at; the
   * balance rows are written once per payer at the end rather than once per add; and positive
   * adds with no draws to take over (the bulk of an import) are inserted INSERT_CHUNK rows a
   * statement.
   */
  addBatch (ledgerId: number, adds: Iterable<NewAdd>): StoredBatch {
    return this.#addBatchTx.immediate(ledgerId, adds)
  }

  #addBatchInTransaction (ledgerId: number, adds: Iterable<NewAdd>): StoredBatch {
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
          const balance = (this.#balanceOf.get({ ledgerId, payer: add.payer }) as number | undefined) ?? 0
          // Only a payer with adjusted lots can have draws for a backdated add to take over.
          const adjusted = this.#payerHasAdjustedLots.get({ ledgerId, payer: add.payer }) !== undefined
          payer = { balance, before: balance, adjusted }
          payers.set(add.payer, payer)
        }
        this.#checkAdd(add, payer.balance, totalNow)
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
  }

  /** The rules of an add, given its payer's balance and its ledger's total before it: throws if refused. */
  #checkAdd (add: NewAdd, balance: number, total: () => number): void {
    if (add.points > 0) {
      if (balance + add.points > MAX) throw new BalanceTooLarge(`payer ${add.payer}`)
      if (total() + add.points > MAX) throw new BalanceTooLarge('the ledger')
    } else if (balance < -add.points) {
      throw new InsufficientPayerPoints(add.payer, balance, -add.points)
    }
  }

  /**
   * Stores an add #checkAdd accepted and moves points between lots; the caller moves the balance
   * rows. `mayBeAdjusted` false: the caller knows no lot of this payer has points a negative add
   * took, so a positive add has no draws to take over.
   */
  #storeAdd (ledgerId: number, add: NewAdd, createdAt: string, mayBeAdjusted: boolean): number {
    const id = Number(this.#insertTransaction.run(ledgerId, add.payer, add.points, add.ts, createdAt).lastInsertRowid)
    if (add.points > 0) {
      this.#insertLot.run(id, ledgerId, add.payer, add.ts, add.points, add.points)
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
    const last = Number(this.#insertTransactions.run(rows).lastInsertRowid)
    const lots: unknown[] = []
    let id = last - adds.length
    for (const add of adds) lots.push(++id, ledgerId, add.payer, add.ts, add.points, add.points)
    this.#insertLots.run(lots)
    return last
  }

  /** A payer's balance row moves by `points`; the payer's first add creates it. */
  #moveBalance (ledgerId: number, payer: string, points: number): void {
    if (points >= 0) this.#creditBalance.run({ ledgerId, payer, points })
    else this.#debitBalance.run({ ledgerId, payer, points: -points })
  }

  /** The ledger's total row moves by `points`; the ledger's first add creates it. */
  #moveTotal (ledgerId: number, points: number): void {
    if (points >= 0) this.#creditLedger.run({ ledgerId, points })
    else this.#debitLedger.run({ ledgerId, points: -points })
  }

  /** A negative add takes its points from the payer's oldest lots that still have points. */
  #adjustOldestFirst (ledgerId: number, adjustmentId: number, add: NewAdd, createdAt: string): void {
    const takes = this.#takeOldestFirst(this.#payerSpendableLots, { ledgerId, payer: add.payer }, -add.points)
    for (const take of takes) {
      this.#shiftAdjustment.run({ lotId: take.lotId, points: take.points })
      this.#insertAdjustmentDraw.run({ adjustmentId, lotId: take.lotId, points: take.points, causeId: adjustmentId, createdAt })
    }
  }

  /**
   * A backdated add: negative adds that drew from this payer's newer lots now draw from these
   * older points instead, newest draws first, as far as the new lot covers. Spends already made
   * stay as they were. Balances do not change; which lots hold them does.
   */
  #moveAdjustmentsOnto (ledgerId: number, lotId: number, add: NewAdd, createdAt: string): void {
    let capacity = add.points
    const newerLots = this.#adjustedNewerLots.all({ ledgerId, payer: add.payer, ts: add.ts }) as number[]
    for (const sourceId of newerLots) {
      const shares = this.#adjustmentSharesOfLot.all({ lotId: sourceId }) as Array<{ adjustment_id: number, points: number }>
      for (const share of shares) {
        const moved = Math.min(capacity, share.points)
        this.#shiftAdjustment.run({ lotId: sourceId, points: -moved })
        this.#shiftAdjustment.run({ lotId, points: moved })
        const row = { adjustmentId: share.adjustment_id, causeId: lotId, createdAt }
        this.#insertAdjustmentDraw.run({ ...row, lotId: sourceId, points: -moved })
        this.#insertAdjustmentDraw.run({ ...row, lotId, points: moved })
        capacity -= moved
        if (capacity === 0) return
      }
    }
  }

  /** Reads lots oldest first only until `points` are covered; the caller knows they will be. */
  #takeOldestFirst (lots: Statement, params: object, points: number): Array<{ lotId: number, payer: string, points: number }> {
    const takes = []
    let left = points
    for (const lot of lots.iterate(params) as IterableIterator<LotRow>) {
      const take = Math.min(lot.remaining, left)
      takes.push({ lotId: lot.transaction_id, payer: lot.payer, points: take })
      left -= take
      if (left === 0) break // leaving the loop closes the cursor: no further lot is read
    }
    return takes
  }

  /**
   * Spends points oldest first across all payers. Refused whole when the ledger has fewer.
   * A dry run answers the same without writing.
   */
  spend (ledgerId: number, points: number, dryRun = false): PayerPoints[] {
    return dryRun ? this.#spendTx.deferred(ledgerId, points, dryRun) : this.#spendTx.immediate(ledgerId, points, dryRun)
  }

  #spendInTransaction (ledgerId: number, points: number, dryRun: boolean): PayerPoints[] {
    const total = this.#total(ledgerId)
    if (total < points) throw new InsufficientPoints(points, total)
    const takes = this.#takeOldestFirst(this.#spendableLots, { ledgerId }, points)
    if (!dryRun) {
      const spendId = Number(this.#insertSpend.run({ ledgerId, points, createdAt: this.#now().toISOString() }).lastInsertRowid)
      takes.forEach((take, i) => {
        this.#spendFromLot.run({ lotId: take.lotId, points: take.points })
        this.#insertSpendDraw.run({ spendId, seq: i + 1, lotId: take.lotId, points: take.points })
      })
    }
    const byPayer = new Map<string, number>()
    for (const take of takes) byPayer.set(take.payer, (byPayer.get(take.payer) ?? 0) + take.points)
    const result = [...byPayer].map(([payer, drawn]) => ({ payer, points: -drawn }))
    if (!dryRun) {
      for (const { payer, points } of result) this.#debitBalance.run({ ledgerId, payer, points: -points })
      this.#debitLedger.run({ ledgerId, points })
    }
    return result
  }

  /** The sum of the ledger's payer balances, from its maintained row (none yet: 0). */
  #total (ledgerId: number): number {
    return (this.#ledgerTotal.get({ ledgerId }) as number | undefined) ?? 0
  }

  /** Every payer of the ledger with its balance, zero included, sorted by payer. */
  balances (ledgerId: number): PayerPoints[] {
    return this.#balances.all({ ledgerId }) as PayerPoints[]
  }

  /** The ledger's adds, newest first, with what each still has or, if negative, draws from. */
  listTransactions (ledgerId: number, page: PageRequest): Page<{
    id: number, payer: string, points: number, timestamp: string, created_at: string, remaining: number | null, drawn_from: Draw[]
  }> {
    return this.#tx.deferred(() => {
      const { items, next_cursor: nextCursor } = toPage(this.#transactionsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, payer: string, points: number, ts: string, created_at: string, remaining: number | null
      }>, page.limit)
      const negatives = items.filter(row => row.points < 0).map(row => row.id)
      const draws = negatives.length > 0
        ? groupDraws(this.#adjustmentDrawsOf.all({ ids: JSON.stringify(negatives) }) as DrawRow[])
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

  /** The ledger's spends, newest first, each with the adds it drew from. */
  listSpends (ledgerId: number, page: PageRequest): Page<{ id: number, points: number, created_at: string, drawn_from: Draw[] }> {
    return this.#tx.deferred(() => {
      const { items, next_cursor: nextCursor } = toPage(this.#spendsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, points: number, created_at: string
      }>, page.limit)
      const draws = items.length > 0
        ? groupDraws(this.#spendDrawsOf.all({ ids: JSON.stringify(items.map(row => row.id)) }) as DrawRow[])
        : new Map<number, Draw[]>()
      return {
        // A spend always draws from at least one lot.
        items: items.map(row => ({ ...row, drawn_from: draws.get(row.id)! })),
        next_cursor: nextCursor
      }
    })
  }
}
