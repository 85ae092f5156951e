import type { Statement } from 'better-sqlite3'
import { transactionRunner, type Db, type TransactionRunner } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { sqliteWork, type SqliteWork } from '../storage/work.js'
import { batchRejected, CaptureExceedsHold, HoldNotFound, HoldNotPending, InsufficientPoints, InvalidExpiry, InvalidTime, ReversalExceedsSpend, SpendFullyReversed, SpendNotFound, UserNotFound } from '../errors.js'
import {
  byPayer, checkAdd, checkRestore, drawLots, drawOldestFirst, LedgerChanges, NO_POINTS, restoreNewestFirst, settle, splitHold, takeOverDraws,
  type AdjustmentShare, type DrawOrder, type DueHold, type DueLot, type HeldDraw, type Holding, type Lot, type NewAdd
} from './ledger.js'
import type {
  CaptureView, Draw, ExpirationView, HoldStatus, HoldView, PayerDetails, PayerPoints, PointsStore, ReversalView, SpendView, StoredAdd,
  StoredBatch, TransactionView
} from './store.js'
import { groupDraws, holdView, lotDraw, type DrawRow, type HoldRow, type LotDrawRow } from './draws.js'
import { formatTimestamp } from './timestamp.js'

/** Rows per multi-row INSERT of a bulk import: 600 parameters, well under SQLite's 32 766. */
const INSERT_CHUNK = 100

/** The statements of expiry, holds and reversals (issue 13); see pointsSql for the rest. */
const lifeSql = {
  // Settling: what came due by @now, through the partial indexes on expiry.
  dueLots:
    'SELECT transaction_id AS lotId, payer, expires_at AS expiresAt, remaining FROM point_lots ' +
    'WHERE ledger_id = @ledgerId AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ' +
    '@now ORDER BY expires_at, transaction_id',
  dueHolds:
    "SELECT id AS holdId, expires_at AS expiresAt FROM point_holds WHERE ledger_id = @ledgerId AND status = 'pending' " +
    'AND expires_at IS NOT NULL AND expires_at <= @now ORDER BY expires_at, id',
  isDue:
    'SELECT EXISTS (SELECT 1 FROM point_lots WHERE ledger_id = @ledgerId AND remaining > 0 AND ' +
    'expires_at IS NOT NULL AND expires_at <= @now) OR EXISTS (SELECT 1 FROM point_holds WHERE ' +
    "ledger_id = @ledgerId AND status = 'pending' AND expires_at IS NOT NULL AND expires_at <= @now)",
  // The sweep's work list: the ledgers of what came due, walking the indexes on expiry.
  dueLotLedgers:
    'SELECT DISTINCT ledger_id FROM point_lots INDEXED BY point_lots_sweep WHERE remaining > 0 AND ' +
    'expires_at IS NOT NULL AND expires_at <= @now LIMIT @limit',
  dueHoldLedgers:
    'SELECT DISTINCT ledger_id FROM point_holds INDEXED BY point_holds_sweep WHERE status = ' +
    "'pending' AND expires_at IS NOT NULL AND expires_at <= @now LIMIT @limit",
  // Net moves of one lot's points between its columns.
  moveLot:
    'UPDATE point_lots SET remaining = remaining + @remaining, held = held + @held, expired = ' +
    'expired + @expired, restored = restored + @restored WHERE transaction_id = @lotId',
  movePayer:
    'UPDATE payer_balances SET balance = balance + @available, held = held + @held WHERE ' +
    'ledger_id = @ledgerId AND payer = @payer',
  insertExpiration:
    'INSERT INTO point_expirations (ledger_id, lot_id, payer, points, expired_at, hold_id, ' +
    'reversal_id, created_at) VALUES (@ledgerId, @lotId, @payer, @points, @expiredAt, @holdId, ' +
    '@reversalId, @createdAt)',
  insertHold:
    "INSERT INTO point_holds (ledger_id, points, status, expires_at, created_at) VALUES (@ledgerId, @points, 'pending', " +
    '@expiresAt, @createdAt)',
  insertHoldDraw:
    'INSERT INTO point_hold_draws (hold_id, seq, lot_id, points) VALUES (@holdId, @seq, @lotId, @points)',
  hold:
    'SELECT id, points, status, expires_at, created_at, captured, spend_id FROM point_holds WHERE ' +
    'id = @holdId AND ledger_id = @ledgerId',
  holdDraws:
    'SELECT d.lot_id AS lotId, l.payer, l.ts, l.expires_at AS expiresAt, d.points FROM ' +
    'point_hold_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE d.hold_id = ' +
    '@holdId ORDER BY d.seq',
  // Only a pending hold resolves: the status in the WHERE makes a second resolution a no-op.
  resolveHold:
    'UPDATE point_holds SET status = @status, resolved_at = @at, captured = @captured, spend_id = ' +
    "@spendId WHERE id = @holdId AND status = 'pending'",
  holdsPage:
    'SELECT id, points, status, expires_at, created_at, captured, spend_id FROM point_holds WHERE ' +
    'ledger_id = @ledgerId AND id < @before ORDER BY id DESC LIMIT @limit',
  holdsPageByStatus:
    'SELECT id, points, status, expires_at, created_at, captured, spend_id FROM point_holds WHERE ' +
    'ledger_id = @ledgerId AND status = @status AND id < @before ORDER BY id DESC LIMIT @limit',
  holdDrawsOf:
    'SELECT d.hold_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_hold_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE d.hold_id IN ' +
    '(SELECT value FROM json_each(@ids)) ORDER BY d.hold_id, d.seq',
  spend: 'SELECT id, points, reversed FROM point_spends WHERE id = @spendId AND ledger_id = @ledgerId',
  spendDraws:
    'SELECT d.lot_id AS lotId, l.payer, l.ts, l.expires_at AS expiresAt, d.points FROM ' +
    'point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE d.spend_id = ' +
    '@spendId ORDER BY d.seq',
  insertReversal:
    'INSERT INTO point_reversals (ledger_id, spend_id, points, created_at) VALUES (@ledgerId, ' +
    '@spendId, @points, @createdAt)',
  insertReversalDraw:
    'INSERT INTO point_reversal_draws (reversal_id, seq, lot_id, points) VALUES (@reversalId, ' +
    '@seq, @lotId, @points)',
  addReversed: 'UPDATE point_spends SET reversed = reversed + @points WHERE id = @spendId',
  reversalsPage:
    'SELECT id, spend_id, points, created_at FROM point_reversals WHERE spend_id = @spendId AND ' +
    'id < @before ORDER BY id DESC LIMIT @limit',
  reversalDrawsOf:
    'SELECT d.reversal_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_reversal_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.reversal_id IN (SELECT value FROM json_each(@ids)) ORDER BY d.reversal_id, d.seq',
  expirationsPage:
    'SELECT id, lot_id AS transaction_id, payer, points, expired_at FROM point_expirations WHERE ' +
    'ledger_id = @ledgerId AND id < @before ORDER BY id DESC LIMIT @limit',
  payerDetails:
    'SELECT payer, balance AS available, held FROM payer_balances WHERE ledger_id = @ledgerId ORDER BY payer',
  expiring:
    'SELECT expires_at, sum(remaining) AS points FROM point_lots WHERE ledger_id = @ledgerId AND ' +
    'payer = @payer AND remaining > 0 AND expires_at IS NOT NULL GROUP BY expires_at ORDER BY ' +
    'expires_at LIMIT 10',
  // Per payer, the latest history row at or before @at: one seek of point_balance_history_at.
  balancesAt:
    'SELECT b.payer, (SELECT h.balance FROM point_balance_history AS h WHERE h.ledger_id = ' +
    'b.ledger_id AND h.payer = b.payer AND h.at <= @at ORDER BY h.at DESC LIMIT 1) AS points FROM ' +
    'payer_balances AS b WHERE b.ledger_id = @ledgerId ORDER BY b.payer'
}

/** Every statement the repository runs, prepared once in its constructor. */
export const pointsSql = {
  // These two run once per add, 10 000 times in a bulk import: bound by position, not by name,
  // which costs a fifth to a third less per add (measured on a 1M-lot file). The order is the
  // columns': insertLot takes points twice (points and remaining).
  insertTransaction:
    'INSERT INTO point_transactions (ledger_id, payer, points, ts, expires_at, created_at) VALUES ' +
    '(?, ?, ?, ?, ?, ?)',
  // remaining and expired: an add already past its expiry is stored expired.
  insertLot:
    'INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, expires_at, points, remaining, ' +
    'expired) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  // A bulk import's positive adds, INSERT_CHUNK at a time: one statement instead of a hundred.
  insertTransactions:
    'INSERT INTO point_transactions (ledger_id, payer, points, ts, expires_at, created_at) VALUES ' +
    Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?)').join(', '),
  insertLots:
    'INSERT INTO point_lots (transaction_id, ledger_id, payer, ts, expires_at, points, remaining) VALUES ' +
    Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?, ?)').join(', '),
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
  payerHolding:
    'SELECT balance, held FROM payer_balances WHERE ledger_id = @ledgerId AND payer = @payer',
  // The ledger's total moves with its payers' balances, in the same transactions.
  creditLedger:
    'INSERT INTO ledger_totals (ledger_id, balance) VALUES (@ledgerId, @points) ON CONFLICT ' +
    '(ledger_id) DO UPDATE SET balance = balance + excluded.balance',
  debitLedger: 'UPDATE ledger_totals SET balance = balance - @points WHERE ledger_id = @ledgerId',
  ledgerTotal: 'SELECT balance FROM ledger_totals WHERE ledger_id = @ledgerId',
  ledgerHolding: 'SELECT balance, held FROM ledger_totals WHERE ledger_id = @ledgerId',
  // Available and held points move together, so that CHECK (balance + held <= 2^53−1) sees
  // where they end. Only a ledger with points settles, holds or reverses, so it has a row.
  moveLedger: 'UPDATE ledger_totals SET balance = balance + @points, held = held + @held WHERE ledger_id = @ledgerId',
  // Ledger n is user n's: its routes answer 404 for a user that does not exist.
  userExists: 'SELECT 1 FROM users WHERE id = @ledgerId',
  spendableLots:
    'SELECT transaction_id, payer, remaining, ts, expires_at AS expiresAt FROM point_lots WHERE ' +
    'ledger_id = @ledgerId AND remaining > 0 ORDER BY ts, transaction_id',
  // POINTS_DRAW_ORDER=expiry: soonest expiry first, lots that never expire last (the same
  // expression as the index point_lots_spendable_expiry, which the planner needs to match).
  spendableLotsByExpiry:
    'SELECT transaction_id, payer, remaining, ts, expires_at AS expiresAt FROM point_lots WHERE ' +
    "ledger_id = @ledgerId AND remaining > 0 ORDER BY coalesce(expires_at, '~'), ts, transaction_id",
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
  // Only lots not past their expiry: an expired lot's draws are final.
  adjustedNewerLots:
    'SELECT transaction_id FROM point_lots WHERE ledger_id = @ledgerId AND payer = @payer AND ' +
    'adjusted > 0 AND ts > @ts AND (expires_at IS NULL OR expires_at > @now) ORDER BY ts DESC, ' +
    'transaction_id DESC',
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
    'SELECT t.id, t.payer, t.points, t.ts, t.created_at, t.expires_at, l.remaining, l.expired FROM point_transactions ' +
    'AS t LEFT JOIN point_lots AS l ON l.transaction_id = t.id WHERE t.ledger_id = @ledgerId ' +
    'AND t.id < @before ORDER BY t.id DESC LIMIT @limit',
  adjustmentDrawsOf:
    'SELECT d.adjustment_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, ' +
    'sum(d.points) AS points FROM point_adjustment_draws AS d JOIN point_lots AS l ON ' +
    'l.transaction_id = d.lot_id WHERE d.adjustment_id IN (SELECT value FROM json_each(@ids)) ' +
    'GROUP BY d.adjustment_id, d.lot_id HAVING sum(d.points) <> 0 ORDER BY d.adjustment_id, ' +
    'l.ts, d.lot_id',
  spendsPage:
    'SELECT id, points, created_at, reversed FROM point_spends WHERE ledger_id = @ledgerId AND id < ' +
    '@before ORDER BY id DESC LIMIT @limit',
  spendDrawsOf:
    'SELECT d.spend_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.spend_id IN (SELECT value FROM json_each(@ids)) ORDER BY d.spend_id, d.seq',
  // A payer's available balance as it now is, recorded at @at (after an add, a spend, a batch).
  // One history row per payer and instant: a later change in the same millisecond updates it.
  recordBalance:
    'INSERT INTO point_balance_history (ledger_id, payer, at, balance) SELECT ledger_id, payer, ' +
    '@at, balance FROM payer_balances WHERE ledger_id = @ledgerId AND payer = @payer ON CONFLICT ' +
    '(ledger_id, payer, at) DO UPDATE SET balance = excluded.balance',
  insertHistory:
    'INSERT INTO point_balance_history (ledger_id, payer, at, balance) VALUES (@ledgerId, ' +
    '@payer, @at, @balance) ON CONFLICT (ledger_id, payer, at) DO UPDATE SET balance = excluded.balance',
  ...lifeSql
}

type Statements = { [K in keyof typeof pointsSql]: Statement }

/** A spendable lot as the stores read it, in the draw order. */
interface LotRow extends Lot { ts: string, expiresAt: string | null }

/**
 * The points ledgers on SQLite. Each positive add is a lot; spends, holds and negative adds draw
 * lots down in the order of ./ledger.ts, and payer_balances keeps each payer's available and held
 * sums (ledger_totals each ledger's) so nothing here sums history, or even the ledger's payers.
 * Writes are synchronous Work, run by the group commit in a savepoint of its transaction: a
 * thrown domain error rolls back that savepoint, so a refused write leaves nothing behind. Every
 * write settles its ledger first (./ledger.ts settle), so no expired point is ever drawn.
 */
export class SqlitePoints implements PointsStore {
  readonly #now: () => Date
  readonly #s: Statements
  readonly #read: TransactionRunner
  readonly #drawOrder: DrawOrder

  constructor (db: Db, now: () => Date, drawOrder: DrawOrder = 'timestamp') {
    this.#now = now
    this.#drawOrder = drawOrder
    this.#s = Object.fromEntries(Object.entries(pointsSql).map(([name, sql]) => [name, db.prepare(sql)])) as Statements
    for (const name of ['balanceOf', 'ledgerTotal', 'userExists', 'adjustedNewerLots', 'payerHasAdjustedLots', 'isDue', 'dueLotLedgers', 'dueHoldLedgers'] as const) this.#s[name].pluck()
    this.#read = transactionRunner(db)
  }

  #assertLedger (ledgerId: number): void {
    if (ledgerId !== 0 && this.#s.userExists.get({ ledgerId }) === undefined) throw new UserNotFound(ledgerId)
  }

  /** Checks the ledger, settles what came due by now, and answers now (stored form). */
  #begin (ledgerId: number): string {
    this.#assertLedger(ledgerId)
    const now = this.#now().toISOString()
    this.#settle(ledgerId, now)
    return now
  }

  add (ledgerId: number, add: NewAdd): SqliteWork<StoredAdd> {
    return sqliteWork(() => {
      const createdAt = this.#begin(ledgerId)
      const points = this.#available(add, createdAt)
      checkAdd({ ...add, points }, this.#payerHolding(ledgerId, add.payer), () => this.#ledgerHolding(ledgerId))
      const id = this.#storeAdd(ledgerId, add, createdAt, true)
      this.#moveBalance(ledgerId, add.payer, points)
      this.#moveTotal(ledgerId, points)
      this.#s.recordBalance.run({ ledgerId, payer: add.payer, at: createdAt })
      const stored: StoredAdd = { id, payer: add.payer, points: add.points, timestamp: formatTimestamp(add.ts) }
      if (add.expiresAt !== undefined) stored.expires_at = formatTimestamp(add.expiresAt)
      return stored
    })
  }

  /** What an add puts in its payer's balance: nothing if it is already past its expiry. */
  #available (add: NewAdd, now: string): number {
    return add.expiresAt !== undefined && add.expiresAt <= now ? 0 : add.points
  }

  /**
   * The balance rows are written once per payer at the end rather than once per add, and
   * positive adds with no draws to take over (the bulk of an import) are inserted INSERT_CHUNK
   * rows a statement.
   */
  addBatch (ledgerId: number, adds: Iterable<NewAdd>): SqliteWork<StoredBatch> {
    return sqliteWork(() => {
      const createdAt = this.#begin(ledgerId)
      const payers = new Map<string, { balance: number, held: number, before: number, adjusted: boolean }>()
      const ledger = this.#ledgerHolding(ledgerId)
      const before = ledger.balance
      let total = before
      const totalNow = (): Holding => ({ balance: total, held: ledger.held })
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
            const { balance, held } = this.#payerHolding(ledgerId, add.payer)
            // Only a payer with adjusted lots can have draws for a backdated add to take over.
            const adjusted = this.#s.payerHasAdjustedLots.get({ ledgerId, payer: add.payer }) !== undefined
            payer = { balance, held, before: balance, adjusted }
            payers.set(add.payer, payer)
          }
          const points = this.#available(add, createdAt)
          checkAdd({ ...add, points }, payer, totalNow)
          if (add.points > 0 && points > 0 && !payer.adjusted) {
            plain.push(add)
            if (plain.length === INSERT_CHUNK) insertPlain()
          } else {
            insertPlain()
            last = this.#storeAdd(ledgerId, add, createdAt, true)
            payer.adjusted ||= add.points < 0
          }
          payer.balance += points
          total += points
          index++
        }
        insertPlain()
      } catch (err) {
        throw batchRejected(index, err)
      }
      for (const [name, payer] of payers) {
        this.#moveBalance(ledgerId, name, payer.balance - payer.before)
        this.#s.recordBalance.run({ ledgerId, payer: name, at: createdAt })
      }
      this.#moveTotal(ledgerId, total - before)
      // Nothing else inserts into point_transactions in this transaction: the ids are consecutive.
      return { count: index, first_id: last - index + 1, last_id: last }
    })
  }

  /**
   * Stores an add checkAdd accepted and moves points between lots; the caller moves the balance
   * rows. `mayBeAdjusted` false: the caller knows no lot of this payer has points a negative add
   * took, so a positive add has no draws to take over. An add already past its expiry is stored
   * expired, with its expiration, and takes over nothing.
   */
  #storeAdd (ledgerId: number, add: NewAdd, createdAt: string, mayBeAdjusted: boolean): number {
    const expiresAt = add.expiresAt ?? null
    const id = Number(this.#s.insertTransaction.run(ledgerId, add.payer, add.points, add.ts, expiresAt, createdAt).lastInsertRowid)
    if (add.points < 0) {
      this.#adjustOldestFirst(ledgerId, id, add, createdAt)
    } else if (expiresAt !== null && expiresAt <= createdAt) {
      this.#s.insertLot.run(id, ledgerId, add.payer, add.ts, expiresAt, add.points, 0, add.points)
      this.#s.insertExpiration.run({ ledgerId, lotId: id, payer: add.payer, points: add.points, expiredAt: expiresAt, holdId: null, reversalId: null, createdAt })
    } else {
      this.#s.insertLot.run(id, ledgerId, add.payer, add.ts, expiresAt, add.points, add.points, 0)
      if (mayBeAdjusted) this.#moveAdjustmentsOnto(ledgerId, id, add, createdAt)
    }
    return id
  }

  /** #storeAdd of INSERT_CHUNK positive unexpired adds with no draws to take over, in two statements. */
  #insertChunk (ledgerId: number, adds: NewAdd[], createdAt: string): number {
    const rows: unknown[] = []
    for (const add of adds) rows.push(ledgerId, add.payer, add.points, add.ts, add.expiresAt ?? null, createdAt)
    // One INSERT of many rows gives them consecutive ids (max(id) + 1 each), ending at this one.
    const last = Number(this.#s.insertTransactions.run(rows).lastInsertRowid)
    const lots: unknown[] = []
    let id = last - adds.length
    for (const add of adds) lots.push(++id, ledgerId, add.payer, add.ts, add.expiresAt ?? null, add.points, add.points)
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

  /** The draws of negative adds on this payer's unexpired lots newer than `ts`: newest lots, then newest adds, first. */
  * #sharesNewerThan (ledgerId: number, payer: string, ts: string, now: string): Generator<AdjustmentShare> {
    for (const lotId of this.#s.adjustedNewerLots.all({ ledgerId, payer, ts, now }) as number[]) {
      for (const share of this.#s.adjustmentSharesOfLot.all({ lotId }) as Array<{ adjustment_id: number, points: number }>) {
        yield { lotId, adjustmentId: share.adjustment_id, points: share.points }
      }
    }
  }

  /** A backdated add takes over what negative adds drew from newer lots (takeOverDraws). */
  #moveAdjustmentsOnto (ledgerId: number, lotId: number, add: NewAdd, createdAt: string): void {
    for (const move of takeOverDraws(this.#sharesNewerThan(ledgerId, add.payer, add.ts, createdAt), add.points)) {
      this.#s.shiftAdjustment.run({ lotId: move.fromLotId, points: -move.points })
      this.#s.shiftAdjustment.run({ lotId, points: move.points })
      const row = { adjustmentId: move.adjustmentId, causeId: lotId, createdAt }
      this.#s.insertAdjustmentDraw.run({ ...row, lotId: move.fromLotId, points: -move.points })
      this.#s.insertAdjustmentDraw.run({ ...row, lotId, points: move.points })
    }
  }

  /** The ledger's available lots in the draw order (POINTS_DRAW_ORDER), read as they are drawn. */
  #spendableLots (ledgerId: number): IterableIterator<LotRow> {
    const statement = this.#drawOrder === 'expiry' ? this.#s.spendableLotsByExpiry : this.#s.spendableLots
    return statement.iterate({ ledgerId }) as IterableIterator<LotRow>
  }

  spend (ledgerId: number, points: number, dryRun: boolean): SqliteWork<PayerPoints[]> {
    return sqliteWork(() => {
      // A dry run writes nothing, so it settles nothing: the route settles a due ledger first.
      this.#assertLedger(ledgerId)
      const createdAt = this.#now().toISOString()
      if (!dryRun) this.#settle(ledgerId, createdAt)
      const total = this.#total(ledgerId)
      if (total < points) throw new InsufficientPoints(points, total)
      const takes = drawOldestFirst(this.#spendableLots(ledgerId), points)
      const result = byPayer(takes)
      if (dryRun) return result
      const spendId = Number(this.#s.insertSpend.run({ ledgerId, points, createdAt }).lastInsertRowid)
      takes.forEach((take, i) => {
        this.#s.spendFromLot.run({ lotId: take.lotId, points: take.points })
        this.#s.insertSpendDraw.run({ spendId, seq: i + 1, lotId: take.lotId, points: take.points })
      })
      for (const { payer, points } of result) {
        this.#s.debitBalance.run({ ledgerId, payer, points: -points })
        this.#s.recordBalance.run({ ledgerId, payer, at: createdAt })
      }
      this.#s.debitLedger.run({ ledgerId, points })
      return result
    })
  }

  /** The sum of the ledger's payer balances, from its maintained row (none yet: 0). */
  #total (ledgerId: number): number {
    return (this.#s.ledgerTotal.get({ ledgerId }) as number | undefined) ?? 0
  }

  /** The ledger's available and held points (none yet: 0). */
  #ledgerHolding (ledgerId: number): Holding {
    return (this.#s.ledgerHolding.get({ ledgerId }) as Holding | undefined) ?? NO_POINTS
  }

  /** The payer's available and held points (none yet: 0). */
  #payerHolding (ledgerId: number, payer: string): Holding {
    return (this.#s.payerHolding.get({ ledgerId, payer }) as Holding | undefined) ?? NO_POINTS
  }

  // ---- Expiry, holds and reversals ----

  /** Settles what came due in the ledger by `now` (./ledger.ts settle) and writes it. */
  #settle (ledgerId: number, now: string): void {
    const lots = this.#s.dueLots.all({ ledgerId, now }) as DueLot[]
    const due = this.#s.dueHolds.all({ ledgerId, now }) as Array<{ holdId: number, expiresAt: string }>
    if (lots.length === 0 && due.length === 0) return
    const holds: DueHold[] = due.map(hold => ({ ...hold, draws: this.#s.holdDraws.all({ holdId: hold.holdId }) as HeldDraw[] }))
    const changes = new LedgerChanges()
    for (const { holdId, at } of settle(lots, holds, now, changes)) {
      this.#s.resolveHold.run({ holdId, status: 'expired', at, captured: null, spendId: null })
    }
    this.#apply(ledgerId, changes, now)
  }

  /** Writes what the rules gathered: lots, expirations, payers' balances, the total, history. */
  #apply (ledgerId: number, changes: LedgerChanges, createdAt: string): void {
    for (const [lotId, delta] of changes.lots) this.#s.moveLot.run({ lotId, ...delta })
    for (const e of changes.expirations) this.#s.insertExpiration.run({ ledgerId, ...e, createdAt })
    const payers = changes.payers()
    const before = new Map(payers.map(payer => [payer, this.#s.balanceOf.get({ ledgerId, payer }) as number]))
    const moves = changes.payerMoves()
    for (const payer of payers) this.#s.movePayer.run({ ledgerId, payer, available: moves.get(payer) ?? 0, held: changes.held.get(payer) ?? 0 })
    this.#s.moveLedger.run({ ledgerId, points: changes.total(), held: changes.totalHeld() })
    for (const row of changes.history(before)) this.#s.insertHistory.run({ ledgerId, ...row })
  }

  settle (ledgerId: number): SqliteWork<void> {
    return sqliteWork(() => { this.#settle(ledgerId, this.#now().toISOString()) })
  }

  async due (ledgerId: number): Promise<boolean> {
    return this.#s.isDue.get({ ledgerId, now: this.#now().toISOString() }) === 1
  }

  async dueLedgers (limit: number): Promise<number[]> {
    const args = { now: this.#now().toISOString(), limit }
    const ledgers = new Set([...this.#s.dueLotLedgers.all(args), ...this.#s.dueHoldLedgers.all(args)] as number[])
    return [...ledgers].slice(0, limit)
  }

  hold (ledgerId: number, points: number, expiresAt: string | null): SqliteWork<HoldView> {
    return sqliteWork(() => {
      const createdAt = this.#begin(ledgerId)
      if (expiresAt !== null && expiresAt <= createdAt) throw new InvalidExpiry('of a hold must be later than now')
      const total = this.#total(ledgerId)
      if (total < points) throw new InsufficientPoints(points, total)
      const takes = drawLots(this.#spendableLots(ledgerId), points)
      const holdId = Number(this.#s.insertHold.run({ ledgerId, points, expiresAt, createdAt }).lastInsertRowid)
      const changes = new LedgerChanges()
      takes.forEach(({ lot, points }, i) => {
        this.#s.insertHoldDraw.run({ holdId, seq: i + 1, lotId: lot.transaction_id, points })
        changes.hold({ lotId: lot.transaction_id, payer: lot.payer, expiresAt: lot.expiresAt }, points, createdAt)
      })
      this.#apply(ledgerId, changes, createdAt)
      return {
        id: holdId,
        points,
        status: 'pending',
        drawn_from: takes.map(({ lot, points }) => lotDraw({ lotId: lot.transaction_id, payer: lot.payer, ts: lot.ts, points })),
        expires_at: expiresAt === null ? null : formatTimestamp(expiresAt),
        created_at: createdAt
      }
    })
  }

  /** A hold of this ledger that is still pending, with its draws; refuses any other. */
  #pendingHold (ledgerId: number, holdId: number): { hold: HoldRow, draws: Array<HeldDraw & { ts: string }> } {
    const hold = this.#s.hold.get({ ledgerId, holdId }) as HoldRow | undefined
    if (hold === undefined) throw new HoldNotFound(holdId)
    if (hold.status !== 'pending') throw new HoldNotPending(holdId, hold.status)
    return { hold, draws: this.#s.holdDraws.all({ holdId }) as Array<HeldDraw & { ts: string }> }
  }

  capture (ledgerId: number, holdId: number, points: number | undefined): SqliteWork<CaptureView> {
    return sqliteWork(() => {
      const now = this.#begin(ledgerId)
      const { hold, draws } = this.#pendingHold(ledgerId, holdId)
      const captured = points ?? hold.points
      if (captured > hold.points) throw new CaptureExceedsHold(holdId, hold.points, captured)
      const split = splitHold(draws, captured)
      const spendId = Number(this.#s.insertSpend.run({ ledgerId, points: captured, createdAt: now }).lastInsertRowid)
      const changes = new LedgerChanges()
      split.captured.forEach((draw, i) => {
        this.#s.insertSpendDraw.run({ spendId, seq: i + 1, lotId: draw.lotId, points: draw.points })
        changes.capture(draw, draw.points)
      })
      for (const draw of split.released) changes.release(draw, draw.points, now, holdId)
      this.#s.resolveHold.run({ holdId, status: 'captured', at: now, captured, spendId })
      this.#apply(ledgerId, changes, now)
      const spent = byPayer(split.captured)
      return { ...holdView({ ...hold, status: 'captured', captured, spend_id: spendId }, draws), spent }
    })
  }

  void (ledgerId: number, holdId: number): SqliteWork<HoldView> {
    return sqliteWork(() => {
      const now = this.#begin(ledgerId)
      const { hold, draws } = this.#pendingHold(ledgerId, holdId)
      const changes = new LedgerChanges()
      for (const draw of draws) changes.release(draw, draw.points, now, holdId)
      this.#s.resolveHold.run({ holdId, status: 'voided', at: now, captured: null, spendId: null })
      this.#apply(ledgerId, changes, now)
      return holdView({ ...hold, status: 'voided' }, draws)
    })
  }

  reverse (ledgerId: number, spendId: number, points: number | undefined): SqliteWork<ReversalView> {
    return sqliteWork(() => {
      const now = this.#begin(ledgerId)
      const spend = this.#s.spend.get({ ledgerId, spendId }) as { points: number, reversed: number } | undefined
      if (spend === undefined) throw new SpendNotFound(spendId)
      const left = spend.points - spend.reversed
      const reversed = points ?? left
      if (left === 0) throw new SpendFullyReversed(spendId)
      if (reversed > left) throw new ReversalExceedsSpend(spendId, left, reversed)
      const draws = this.#s.spendDraws.all({ spendId }) as Array<LotDrawRow & { expiresAt: string | null }>
      const restored = restoreNewestFirst(draws, spend.reversed, reversed)
      const reversalId = Number(this.#s.insertReversal.run({ ledgerId, spendId, points: reversed, createdAt: now }).lastInsertRowid)
      const changes = new LedgerChanges()
      restored.forEach((draw, i) => {
        this.#s.insertReversalDraw.run({ reversalId, seq: i + 1, lotId: draw.lotId, points: draw.points })
        changes.restore(draw, draw.points, now, reversalId)
      })
      checkRestore(changes, new Map(changes.payers().map(payer => [payer, this.#payerHolding(ledgerId, payer)])), this.#ledgerHolding(ledgerId))
      this.#s.addReversed.run({ spendId, points: reversed })
      this.#apply(ledgerId, changes, now)
      return { id: reversalId, spend_id: spendId, points: reversed, restored_to: restored.map(lotDraw), created_at: now }
    })
  }

  async balances (ledgerId: number): Promise<PayerPoints[]> {
    // Two reads, no transaction: a user, once created, is never removed (but by a flush).
    this.#assertLedger(ledgerId)
    return this.#s.balances.all({ ledgerId }) as PayerPoints[]
  }

  async balanceDetails (ledgerId: number): Promise<PayerDetails[]> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      return (this.#s.payerDetails.all({ ledgerId }) as Array<Omit<PayerDetails, 'expiring'>>).map(row => ({
        ...row,
        expiring: (this.#s.expiring.all({ ledgerId, payer: row.payer }) as Array<{ expires_at: string, points: number }>)
          .map(e => ({ expires_at: formatTimestamp(e.expires_at), points: e.points }))
      }))
    })
  }

  async balancesAt (ledgerId: number, at: string): Promise<PayerPoints[]> {
    if (at > this.#now().toISOString()) throw new InvalidTime('at', 'is in the future')
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      return (this.#s.balancesAt.all({ ledgerId, at }) as Array<{ payer: string, points: number | null }>)
        .filter((row): row is PayerPoints => row.points !== null)
    })
  }

  async getHold (ledgerId: number, holdId: number): Promise<HoldView> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const hold = this.#s.hold.get({ ledgerId, holdId }) as HoldRow | undefined
      if (hold === undefined) throw new HoldNotFound(holdId)
      return holdView(hold, this.#s.holdDraws.all({ holdId }) as LotDrawRow[])
    })
  }

  async listHolds (ledgerId: number, status: HoldStatus | undefined, page: PageRequest): Promise<Page<HoldView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const args = { ledgerId, status, before: pageStart(page), limit: page.limit + 1 }
      const rows = (status === undefined ? this.#s.holdsPage.all(args) : this.#s.holdsPageByStatus.all(args)) as HoldRow[]
      const { items, next_cursor: nextCursor } = toPage(rows, page.limit)
      const draws = this.#drawsOf(this.#s.holdDrawsOf, items)
      return { items: items.map(hold => holdView(hold, draws.get(hold.id)!)), next_cursor: nextCursor }
    })
  }

  /** The draws of a page of holds, spends or reversals, grouped by owner (no owner: no query). */
  #drawsOf (statement: Statement, items: Array<{ id: number }>): Map<number, Draw[]> {
    if (items.length === 0) return new Map()
    return groupDraws(statement.all({ ids: JSON.stringify(items.map(row => row.id)) }) as DrawRow[])
  }

  async listReversals (ledgerId: number, spendId: number, page: PageRequest): Promise<Page<ReversalView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      if (this.#s.spend.get({ ledgerId, spendId }) === undefined) throw new SpendNotFound(spendId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.reversalsPage.all({ spendId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, spend_id: number, points: number, created_at: string
      }>, page.limit)
      const draws = this.#drawsOf(this.#s.reversalDrawsOf, items)
      return { items: items.map(row => ({ id: row.id, spend_id: row.spend_id, points: row.points, restored_to: draws.get(row.id)!, created_at: row.created_at })), next_cursor: nextCursor }
    })
  }

  async listExpirations (ledgerId: number, page: PageRequest): Promise<Page<ExpirationView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.expirationsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as ExpirationView[], page.limit)
      return { items: items.map(row => ({ ...row, expired_at: formatTimestamp(row.expired_at) })), next_cursor: nextCursor }
    })
  }

  async listTransactions (ledgerId: number, page: PageRequest): Promise<Page<TransactionView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.transactionsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, payer: string, points: number, ts: string, created_at: string, expires_at: string | null, remaining: number | null, expired: number | null
      }>, page.limit)
      const negatives = items.filter(row => row.points < 0).map(row => ({ id: row.id }))
      const draws = this.#drawsOf(this.#s.adjustmentDrawsOf, negatives)
      return {
        items: items.map(row => ({
          id: row.id,
          payer: row.payer,
          points: row.points,
          timestamp: formatTimestamp(row.ts),
          created_at: row.created_at,
          remaining: row.remaining,
          drawn_from: draws.get(row.id) ?? [],
          expires_at: row.expires_at === null ? null : formatTimestamp(row.expires_at),
          expired: row.expired
        })),
        next_cursor: nextCursor
      }
    })
  }

  async listSpends (ledgerId: number, page: PageRequest): Promise<Page<SpendView>> {
    return this.#read.deferred(() => {
      this.#assertLedger(ledgerId)
      const { items, next_cursor: nextCursor } = toPage(this.#s.spendsPage.all({ ledgerId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
        id: number, points: number, created_at: string, reversed: number
      }>, page.limit)
      const draws = this.#drawsOf(this.#s.spendDrawsOf, items)
      return {
        // A spend always draws from at least one lot.
        items: items.map(row => ({ id: row.id, points: row.points, created_at: row.created_at, drawn_from: draws.get(row.id)!, reversed: row.reversed })),
        next_cursor: nextCursor
      }
    })
  }
}
