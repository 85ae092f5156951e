import { batchRejected, InsufficientPoints, UserNotFound } from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import type { PgTransactions } from '../storage/postgres/transaction.js'
import { postgresWork, type PgTx, type PostgresWork } from '../storage/work.js'
import { byPayer, checkAdd, drawOldestFirst, takeOverDraws, type AdjustmentShare, type Lot, type NewAdd } from './ledger.js'
import type { Draw, PayerPoints, PointsStore, SpendView, StoredAdd, StoredBatch, TransactionView } from './store.js'
import { groupDraws, type DrawRow } from './draws.js'
import { formatTimestamp } from './timestamp.js'

/** Lots read per round trip while a spend or a negative add looks for enough points. */
const LOT_PAGE = 100
/** Adds per INSERT of a batch: one statement, its rows bound as arrays. */
const INSERT_CHUNK = 1000
// Keyset cursors to start from. Stored timestamps are digits and ASCII punctuation, so every one
// sorts after '' and before '~' (the columns compare bytewise, COLLATE "C").
const BEFORE_ANY_TS = ''
const AFTER_ANY_TS = '~'

/**
 * Every statement the store runs. Each text is constant, so PgTransactions prepares it once per
 * connection. Lists travel as arrays (unnest, = ANY), never as SQL built per request.
 */
export const pgPointsSql = {
  // Ledger n is user n's: its routes answer 404 for a user that does not exist.
  userExists: 'SELECT 1 FROM users WHERE id = $1',
  // The ledger's lock, taken first by every write of its points (see PgPoints). An add creates
  // the row if need be; ON CONFLICT DO UPDATE locks it whether it was there or just made.
  lockTotalForAdd:
    'INSERT INTO ledger_totals (ledger_id, balance) VALUES ($1, 0) ON CONFLICT (ledger_id) DO ' +
    'UPDATE SET balance = ledger_totals.balance RETURNING balance',
  lockTotalForSpend: 'SELECT balance FROM ledger_totals WHERE ledger_id = $1 FOR UPDATE',
  // A dry run locks nothing: it may run in a READ ONLY transaction, where FOR UPDATE is refused.
  total: 'SELECT balance FROM ledger_totals WHERE ledger_id = $1',
  // A batch's ids must be consecutive: see addBatch.
  lockTransactions: 'LOCK TABLE point_transactions IN EXCLUSIVE MODE',
  // Each payer's balance (0 when it has none yet) and whether a negative add has drawn any of its
  // lots: only then can a backdated add have draws to take over.
  payers:
    'SELECT p.payer, coalesce(b.balance, 0) AS balance, EXISTS (SELECT 1 FROM point_lots AS l ' +
    'WHERE l.ledger_id = $1 AND l.payer = p.payer AND l.adjusted > 0) AS adjusted FROM ' +
    'unnest($2::text[]) AS p (payer) LEFT JOIN payer_balances AS b ON b.ledger_id = $1 AND ' +
    'b.payer = p.payer',
  // Adds in order (ids follow the arrays' order), and a lot for each positive one.
  insertAdds:
    'WITH t AS (INSERT INTO point_transactions (ledger_id, payer, points, ts, created_at) ' +
    'SELECT $1, a.payer, a.points, a.ts, $5 FROM unnest($2::text[], $3::bigint[], $4::text[]) ' +
    'AS a (payer, points, ts) RETURNING id, payer, points, ts), lots AS (INSERT INTO point_lots ' +
    '(transaction_id, ledger_id, payer, ts, points, remaining) SELECT id, $1, payer, ts, points, ' +
    'points FROM t WHERE points > 0) SELECT max(id) AS last_id FROM t',
  // Spendable lots in drawing order, a page after the cursor ($2, $3) at a time (partial index).
  lotsPage:
    'SELECT transaction_id, payer, remaining, ts FROM point_lots WHERE ledger_id = $1 AND ' +
    `remaining > 0 AND (ts, transaction_id) > ($2, $3) ORDER BY ts, transaction_id LIMIT ${LOT_PAGE}`,
  payerLotsPage:
    'SELECT transaction_id, payer, remaining, ts FROM point_lots WHERE ledger_id = $1 AND ' +
    'payer = $2 AND remaining > 0 AND (ts, transaction_id) > ($3, $4) ORDER BY ts, ' +
    `transaction_id LIMIT ${LOT_PAGE}`,
  // What each negative add still draws from the payer's lots newer than $3: newest lots, then
  // newest adds, first; a page of lots before the cursor ($4, $5) at a time. LATERAL: each lot's
  // draws through their index, rather than a hash of every draw of every lot.
  sharesPage:
    'SELECT l.transaction_id AS lot_id, l.ts, d.adjustment_id, d.points FROM (SELECT ' +
    'transaction_id, ts FROM point_lots WHERE ledger_id = $1 AND payer = $2 AND adjusted > 0 ' +
    'AND ts > $3 AND (ts, transaction_id) < ($4, $5) ORDER BY ts DESC, transaction_id DESC ' +
    `LIMIT ${LOT_PAGE}) AS l CROSS JOIN LATERAL (SELECT adjustment_id, sum(points)::bigint AS ` +
    'points FROM point_adjustment_draws WHERE lot_id = l.transaction_id GROUP BY adjustment_id ' +
    'HAVING sum(points) > 0) AS d ORDER BY l.ts DESC, l.transaction_id DESC, d.adjustment_id DESC',
  // Draws of negative adds, in order: positive points move a lot's points from remaining to
  // adjusted, negative ones give them back. Summed per lot first: an UPDATE ... FROM applies
  // one joined row per target row.
  adjust:
    'WITH d AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) WITH ORDINALITY ' +
    'AS d (adjustment_id, lot_id, points, n)), shifted AS (UPDATE point_lots AS l SET remaining ' +
    '= l.remaining - s.points, adjusted = l.adjusted + s.points FROM (SELECT lot_id, ' +
    'sum(points)::bigint AS points FROM d GROUP BY lot_id) AS s WHERE l.transaction_id = ' +
    's.lot_id) INSERT INTO point_adjustment_draws (adjustment_id, lot_id, points, cause_id, ' +
    'created_at) SELECT adjustment_id, lot_id, points, $4, $5 FROM d ORDER BY n',
  // A spend, its draws in order, the lots drawn down, its payers' balances ($6, $7: each payer
  // once, points negative) and the ledger's total moved: one statement, because every round
  // trip made while the ledger's row is held is one more wait for every other spend of it.
  recordSpend:
    'WITH spend AS (INSERT INTO point_spends (ledger_id, points, created_at) VALUES ($1, $2, $3) ' +
    'RETURNING id), drawn AS (UPDATE point_lots AS l SET remaining = l.remaining - d.points ' +
    'FROM unnest($4::bigint[], $5::bigint[]) AS d (lot_id, points) WHERE l.transaction_id = ' +
    'd.lot_id), debit AS (UPDATE payer_balances AS b SET balance = b.balance + m.points FROM ' +
    'unnest($6::text[], $7::bigint[]) AS m (payer, points) WHERE b.ledger_id = $1 AND b.payer = ' +
    'm.payer), total AS (UPDATE ledger_totals SET balance = balance - $2 WHERE ledger_id = $1) ' +
    'INSERT INTO point_spend_draws (spend_id, seq, lot_id, points) SELECT spend.id, d.seq, ' +
    'd.lot_id, d.points FROM spend, unnest($4::bigint[], $5::bigint[]) WITH ORDINALITY AS d ' +
    '(lot_id, points, seq)',
  // Payers' balances move by their points (each payer once; its first add creates its row, even
  // at 0), and the ledger's total by $4. A negative move is an UPDATE: PostgreSQL checks the
  // proposed row of an INSERT against CHECK (balance >= 0) before ON CONFLICT.
  moveBalances:
    'WITH credit AS (INSERT INTO payer_balances (ledger_id, payer, balance) SELECT $1, m.payer, ' +
    'm.points FROM unnest($2::text[], $3::bigint[]) AS m (payer, points) WHERE m.points >= 0 ON ' +
    'CONFLICT (ledger_id, payer) DO UPDATE SET balance = payer_balances.balance + ' +
    'excluded.balance), debit AS (UPDATE payer_balances AS b SET balance = b.balance + m.points ' +
    'FROM unnest($2::text[], $3::bigint[]) AS m (payer, points) WHERE m.points < 0 AND ' +
    'b.ledger_id = $1 AND b.payer = m.payer) UPDATE ledger_totals SET balance = balance + $4 ' +
    'WHERE ledger_id = $1',
  balances: 'SELECT payer, balance AS points FROM payer_balances WHERE ledger_id = $1 ORDER BY payer',
  // The pages of a ledger's history are a range of its (ledger_id, id) index, read downwards
  // from the cursor: "ledger_id >= $1" rather than "= $1", so that the planner cannot walk the
  // primary key backwards instead, filtering by ledger, which for a ledger with only old rows
  // would read most of the table.
  transactionsPage:
    'SELECT t.id, t.payer, t.points, t.ts, t.created_at, l.remaining FROM point_transactions ' +
    'AS t LEFT JOIN point_lots AS l ON l.transaction_id = t.id WHERE (t.ledger_id, t.id) < ($1, ' +
    '$2) AND t.ledger_id >= $1 ORDER BY t.ledger_id DESC, t.id DESC LIMIT $3',
  adjustmentDrawsOf:
    'SELECT d.adjustment_id AS owner_id, l.transaction_id, l.payer, l.ts, ' +
    'sum(d.points)::bigint AS points FROM point_adjustment_draws AS d JOIN point_lots AS l ON ' +
    'l.transaction_id = d.lot_id WHERE d.adjustment_id = ANY ($1::bigint[]) GROUP BY ' +
    'd.adjustment_id, l.transaction_id HAVING sum(d.points) <> 0 ORDER BY d.adjustment_id, ' +
    'l.ts, l.transaction_id',
  spendsPage:
    'SELECT id, points, created_at FROM point_spends WHERE (ledger_id, id) < ($1, $2) AND ' +
    'ledger_id >= $1 ORDER BY ledger_id DESC, id DESC LIMIT $3',
  spendDrawsOf:
    'SELECT d.spend_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.spend_id = ANY ($1::bigint[]) ORDER BY d.spend_id, d.seq'
} as const

const sql = pgPointsSql

interface LotRow extends Lot { ts: string }
interface ShareRow { lot_id: number, ts: string, adjustment_id: number, points: number }
interface PayerRow { payer: string, balance: number, adjusted: boolean }

/**
 * A dry run found fewer points in the lots than in the ledger's total: it read them without a
 * lock (and under READ COMMITTED, statement by statement), and a write committed in between. Its
 * code is serialization_failure's, so PgTransactions runs the transaction again whole.
 */
export class LedgerChangedDuringRead extends Error {
  override name = 'LedgerChangedDuringRead'
  readonly code = '40001'
  constructor () {
    super('The ledger changed while a dry run read it; run it again')
  }
}

/**
 * Reads pages (each in order, continuing after the one before) until the rows' `amount`s add up
 * to `needed` or a page says it was the last. Rules like drawOldestFirst then read only these.
 */
async function readUntilCovered<T> (needed: number, amount: (row: T) => number,
  readPage: (last: T | undefined) => Promise<{ rows: T[], last: boolean }>): Promise<{ rows: T[], covered: boolean }> {
  const rows: T[] = []
  let sum = 0
  for (;;) {
    const page = await readPage(rows[rows.length - 1])
    for (const row of page.rows) { rows.push(row); sum += amount(row) }
    if (sum >= needed) return { rows, covered: true }
    if (page.last) return { rows, covered: false }
  }
}

/**
 * The points ledgers on PostgreSQL: the same rows as SqlitePoints (./sqlite.ts), the same rules
 * (./ledger.ts), the same answers. Writes are Work for the engine's transaction, READ COMMITTED
 * or SERIALIZABLE, with several tally processes on one database.
 *
 * Locks, always in this order:
 * 1. the ledger's `ledger_totals` row, first thing in every add, batch and spend (after checking
 *    that a user's ledger has its user, which locks nothing). Every other row of the ledger's
 *    points (payer balances, lots, draws) is then touched by the row's holder only, so those are
 *    read without locks: under READ COMMITTED each later statement sees what the previous holder
 *    committed; under SERIALIZABLE a holder whose snapshot is older fails with 40001 and is run
 *    again by PgTransactions.
 * 2. point_transactions IN EXCLUSIVE MODE, in a batch only, once its adds are checked.
 *
 * A refusal is decided before anything is inserted, so a refused write draws no id from a
 * sequence (which a rollback would not give back): ids follow SQLite's.
 */
export class PgPoints implements PointsStore {
  readonly #reads: PgTransactions
  readonly #now: () => Date

  constructor (reads: PgTransactions, now: () => Date) {
    this.#reads = reads
    this.#now = now
  }

  async #assertLedger (tx: PgTx, ledgerId: number): Promise<void> {
    if (ledgerId !== 0 && (await tx.query(sql.userExists, [ledgerId])).length === 0) throw new UserNotFound(ledgerId)
  }

  /** Locks the ledger's total row, creating it at 0 if need be, and answers the total. */
  async #lockForAdd (tx: PgTx, ledgerId: number): Promise<number> {
    const [row] = await tx.query<{ balance: number }>(sql.lockTotalForAdd, [ledgerId])
    return row!.balance
  }

  async #payers (tx: PgTx, ledgerId: number, payers: string[]): Promise<Map<string, PayerRow>> {
    const rows = await tx.query<PayerRow>(sql.payers, [ledgerId, payers])
    return new Map(rows.map(row => [row.payer, row]))
  }

  add (ledgerId: number, add: NewAdd): PostgresWork<StoredAdd> {
    return postgresWork(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const total = await this.#lockForAdd(tx, ledgerId)
      const createdAt = this.#now().toISOString()
      const payer = (await this.#payers(tx, ledgerId, [add.payer])).get(add.payer)!
      checkAdd(add, payer.balance, () => total)
      const id = await this.#storeAdd(tx, ledgerId, add, createdAt, payer.adjusted)
      await this.#moveBalances(tx, ledgerId, [add.payer], [add.points], add.points)
      return { id, payer: add.payer, points: add.points, timestamp: formatTimestamp(add.ts) }
    })
  }

  /**
   * Every add is checked before any is stored, so a refused batch inserts nothing. Then positive
   * adds with no draws to take over (the bulk of an import) go in INSERT_CHUNK at a time, the
   * others one by one in their place, and each payer's balance moves once.
   */
  addBatch (ledgerId: number, adds: Iterable<NewAdd>): PostgresWork<StoredBatch> {
    return postgresWork(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const before = await this.#lockForAdd(tx, ledgerId)
      const createdAt = this.#now().toISOString()
      // The adds as the iterator hands them over; a refusal of its own comes after theirs.
      const list: NewAdd[] = []
      let iteratorRefused: { err: unknown } | undefined
      try {
        for (const add of adds) list.push(add)
      } catch (err) {
        iteratorRefused = { err }
      }
      const payers = await this.#payers(tx, ledgerId, [...new Set(list.map(add => add.payer))])
      const balances = new Map([...payers].map(([name, payer]) => [name, payer.balance]))
      let total = before
      const totalNow = (): number => total
      list.forEach((add, index) => {
        try {
          checkAdd(add, balances.get(add.payer)!, totalNow)
        } catch (err) {
          throw batchRejected(index, err)
        }
        balances.set(add.payer, balances.get(add.payer)! + add.points)
        total += add.points
      })
      if (iteratorRefused !== undefined) throw batchRejected(list.length, iteratorRefused.err)

      // SQLite's ids of a batch are consecutive, and so are these: while this lock is held no
      // other transaction inserts into point_transactions (it waits for the ones that have to
      // finish), so nothing else draws from its id sequence. Taken after the ledger's row, as
      // everywhere: a single add holds its ledger's row before it inserts, so a batch waiting
      // for this lock while holding no row would let an add on its ledger take the row, then
      // wait for this lock while the batch waits for the row: a deadlock.
      await tx.query(sql.lockTransactions)
      const plain: NewAdd[] = []
      let last = 0
      const insertPlain = async (): Promise<void> => {
        if (plain.length === 0) return
        last = await this.#insertAdds(tx, ledgerId, plain, createdAt)
        plain.length = 0
      }
      for (const add of list) {
        const payer = payers.get(add.payer)!
        if (add.points > 0 && !payer.adjusted) {
          plain.push(add)
          if (plain.length === INSERT_CHUNK) await insertPlain()
        } else {
          await insertPlain()
          last = await this.#storeAdd(tx, ledgerId, add, createdAt, true)
          payer.adjusted = true
        }
      }
      await insertPlain()
      const names = [...payers.keys()]
      await this.#moveBalances(tx, ledgerId, names, names.map(name => balances.get(name)! - payers.get(name)!.balance), total - before)
      return { count: list.length, first_id: last - list.length + 1, last_id: last }
    })
  }

  /** Inserts adds in order; answers the last one's id (the ids are consecutive). */
  async #insertAdds (tx: PgTx, ledgerId: number, adds: NewAdd[], createdAt: string): Promise<number> {
    const [row] = await tx.query<{ last_id: number }>(sql.insertAdds,
      [ledgerId, adds.map(add => add.payer), adds.map(add => add.points), adds.map(add => add.ts), createdAt])
    return row!.last_id
  }

  /**
   * Stores an add checkAdd accepted and moves points between lots; the caller moves the balance
   * rows. `mayBeAdjusted` false: no lot of this payer has points a negative add took, so a
   * positive add has no draws to take over.
   */
  async #storeAdd (tx: PgTx, ledgerId: number, add: NewAdd, createdAt: string, mayBeAdjusted: boolean): Promise<number> {
    const id = await this.#insertAdds(tx, ledgerId, [add], createdAt)
    if (add.points < 0) await this.#adjustOldestFirst(tx, ledgerId, id, add, createdAt)
    else if (mayBeAdjusted) await this.#moveAdjustmentsOnto(tx, ledgerId, id, add, createdAt)
    return id
  }

  /** A negative add takes its points from the payer's oldest lots that still have points. */
  async #adjustOldestFirst (tx: PgTx, ledgerId: number, adjustmentId: number, add: NewAdd, createdAt: string): Promise<void> {
    const { rows } = await readUntilCovered<LotRow>(-add.points, lot => lot.remaining, async after => {
      const rows = await tx.query<LotRow>(sql.payerLotsPage,
        [ledgerId, add.payer, after?.ts ?? BEFORE_ANY_TS, after?.transaction_id ?? 0])
      return { rows, last: rows.length < LOT_PAGE }
    })
    const takes = drawOldestFirst(rows, -add.points)
    await this.#adjust(tx, takes.map(() => adjustmentId), takes.map(take => take.lotId), takes.map(take => take.points), adjustmentId, createdAt)
  }

  /** A backdated add takes over what negative adds drew from newer lots (takeOverDraws). */
  async #moveAdjustmentsOnto (tx: PgTx, ledgerId: number, lotId: number, add: NewAdd, createdAt: string): Promise<void> {
    const { rows } = await readUntilCovered<ShareRow>(add.points, share => share.points, async after => {
      const rows = await tx.query<ShareRow>(sql.sharesPage,
        [ledgerId, add.payer, add.ts, after?.ts ?? AFTER_ANY_TS, after?.lot_id ?? 0])
      // A lot with adjusted > 0 has a negative add's share in it: a page of lots gave a row each at least.
      return { rows, last: new Set(rows.map(row => row.lot_id)).size < LOT_PAGE }
    })
    const shares: AdjustmentShare[] = rows.map(row => ({ lotId: row.lot_id, adjustmentId: row.adjustment_id, points: row.points }))
    const moves = takeOverDraws(shares, add.points)
    if (moves.length === 0) return
    // Each move, in order: its points leave the newer lot and land on this one.
    const adjustmentIds: number[] = []
    const lotIds: number[] = []
    const points: number[] = []
    for (const move of moves) {
      adjustmentIds.push(move.adjustmentId, move.adjustmentId)
      lotIds.push(move.fromLotId, lotId)
      points.push(-move.points, move.points)
    }
    await this.#adjust(tx, adjustmentIds, lotIds, points, lotId, createdAt)
  }

  async #adjust (tx: PgTx, adjustmentIds: number[], lotIds: number[], points: number[], causeId: number, createdAt: string): Promise<void> {
    await tx.query(sql.adjust, [adjustmentIds, lotIds, points, causeId, createdAt])
  }

  async #moveBalances (tx: PgTx, ledgerId: number, payers: string[], points: number[], total: number): Promise<void> {
    await tx.query(sql.moveBalances, [ledgerId, payers, points, total])
  }

  spend (ledgerId: number, points: number, dryRun: boolean): PostgresWork<PayerPoints[]> {
    return postgresWork(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const [row] = await tx.query<{ balance: number }>(dryRun ? sql.total : sql.lockTotalForSpend, [ledgerId])
      const total = row?.balance ?? 0
      if (total < points) throw new InsufficientPoints(points, total)
      const { rows, covered } = await readUntilCovered<LotRow>(points, lot => lot.remaining, async after => {
        const rows = await tx.query<LotRow>(sql.lotsPage, [ledgerId, after?.ts ?? BEFORE_ANY_TS, after?.transaction_id ?? 0])
        return { rows, last: rows.length < LOT_PAGE }
      })
      if (!covered) {
        if (dryRun) throw new LedgerChangedDuringRead()
        // Under the row's lock the lots hold the total exactly, unless the database is corrupt.
        throw new Error(`ledger ${ledgerId}: its total says ${total} points but its lots hold fewer; run db:check`)
      }
      const takes = drawOldestFirst(rows, points)
      const result = byPayer(takes)
      if (dryRun) return result
      await tx.query(sql.recordSpend, [ledgerId, points, this.#now().toISOString(), takes.map(take => take.lotId),
        takes.map(take => take.points), result.map(p => p.payer), result.map(p => p.points)])
      return result
    })
  }

  async balances (ledgerId: number): Promise<PayerPoints[]> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      return await tx.query<PayerPoints>(sql.balances, [ledgerId])
    }, { readOnly: true })
  }

  async listTransactions (ledgerId: number, page: PageRequest): Promise<Page<TransactionView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<{
        id: number, payer: string, points: number, ts: string, created_at: string, remaining: number | null
      }>(sql.transactionsPage, [ledgerId, pageStart(page), page.limit + 1]), page.limit)
      const negatives = items.filter(row => row.points < 0).map(row => row.id)
      const draws = negatives.length > 0
        ? groupDraws(await tx.query<DrawRow>(sql.adjustmentDrawsOf, [negatives]))
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
    }, { readOnly: true })
  }

  async listSpends (ledgerId: number, page: PageRequest): Promise<Page<SpendView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<{ id: number, points: number, created_at: string }>(
        sql.spendsPage, [ledgerId, pageStart(page), page.limit + 1]), page.limit)
      const draws = items.length > 0
        ? groupDraws(await tx.query<DrawRow>(sql.spendDrawsOf, [items.map(row => row.id)]))
        : new Map<number, Draw[]>()
      return {
        // A spend always draws from at least one lot.
        items: items.map(row => ({ ...row, drawn_from: draws.get(row.id)! })),
        next_cursor: nextCursor
      }
    }, { readOnly: true })
  }
}
