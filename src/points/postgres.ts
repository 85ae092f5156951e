import {
  batchRejected, CaptureExceedsHold, HoldNotFound, HoldNotPending, InsufficientPoints, InvalidExpiry, InvalidTime, ReversalExceedsSpend, SpendFullyReversed,
  SpendNotFound, UserNotFound
} from '../errors.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import type { PgTransactions } from '../storage/postgres/transaction.js'
import { postgresWork, type PgTx, type PostgresWork } from '../storage/work.js'
import {
  byPayer, checkAdd, checkRestore, drawLots, drawOldestFirst, LedgerChanges, NO_POINTS, restoreNewestFirst, settle, splitHold, takeOverDraws,
  type AdjustmentShare, type DrawOrder, type DueHold, type DueLot, type Expiration, type HeldDraw, type Holding, type HistoryRow, type Lot,
  type NewAdd
} from './ledger.js'
import type {
  CaptureView, Draw, ExpirationView, HoldStatus, HoldView, PayerDetails, PayerPoints, PointsStore, ReversalView, SpendView, StoredAdd,
  StoredBatch, TransactionView
} from './store.js'
import { groupDraws, holdView, lotDraw, type DrawRow, type HoldRow, type LotDrawRow } from './draws.js'
import { formatTimestamp } from './timestamp.js'

/** Lots read per round trip while a spend, a hold or a negative add looks for enough points. */
const LOT_PAGE = 100
/** Adds per INSERT of a batch: one statement, its rows bound as arrays. */
const INSERT_CHUNK = 1000
// Keyset cursors to start from. Stored timestamps are digits and ASCII punctuation, so every one
// sorts after '' and before '~' (the columns compare bytewise, COLLATE "C"). '~' also stands for
// "never" in the expiry order, as in the index point_lots_spendable_expiry.
const BEFORE_ANY_TS = ''
const AFTER_ANY_TS = '~'
const NEVER = '~'

// What one write does to a ledger's lots and payers (a LedgerChanges), written by one statement
// whose WITH starts with these: $1 the ledger, $2..$6 each lot's moves, $7..$9 each payer's
// (available, held), $10 the total's, $11 now. The payers' rows answer their new balance; the
// ledger's held points move by the payers' ($9).
const moveLots =
  'lots AS (UPDATE point_lots AS l SET remaining = l.remaining + d.remaining, held = l.held + ' +
  'd.held, expired = l.expired + d.expired, restored = l.restored + d.restored FROM ' +
  'unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS d (lot_id, ' +
  'remaining, held, expired, restored) WHERE l.transaction_id = d.lot_id)'
const movePayers =
  'payers AS (UPDATE payer_balances AS b SET balance = b.balance + m.available, held = b.held + ' +
  'm.held FROM unnest($7::text[], $8::bigint[], $9::bigint[]) AS m (payer, available, held) ' +
  'WHERE b.ledger_id = $1 AND b.payer = m.payer RETURNING b.payer, b.balance, m.available)'
const moveTotal =
  'total AS (UPDATE ledger_totals SET balance = balance + $10, held = held + (SELECT ' +
  'coalesce(sum(h), 0) FROM unnest($9::bigint[]) AS h) WHERE ledger_id = $1)'
// A write (not a settling) moves balances at one instant, $11: a history row for each payer whose
// available balance moved ($12) with its balance after, and its expirations ($13..$18) in order.
// One history row per payer and instant: a later change in the same millisecond updates it.
// `reversalId`: the SQL of the expirations' reversal_id.
const UPSERT_HISTORY = 'ON CONFLICT (ledger_id, payer, at) DO UPDATE SET balance = excluded.balance'
const recordChanges = (reversalId: string): string =>
  'history AS (INSERT INTO point_balance_history (ledger_id, payer, at, balance) SELECT $1, ' +
  'p.payer, $11::text, p.balance FROM payers AS p JOIN unnest($12::text[]) AS h (payer) ON ' +
  `h.payer = p.payer ${UPSERT_HISTORY}), expirations AS (INSERT INTO point_expirations ` +
  '(ledger_id, lot_id, payer, points, expired_at, hold_id, reversal_id, created_at) SELECT $1, ' +
  `e.lot_id, e.payer, e.points, e.expired_at, e.hold_id, ${reversalId}, $11::text FROM ` +
  'unnest($13::bigint[], $14::text[], $15::bigint[], $16::text[], $17::bigint[], $18::bigint[]) ' +
  'WITH ORDINALITY AS e (lot_id, payer, points, expired_at, hold_id, reversal_id, n) ORDER BY e.n)'
const applyChanges = (reversalId = 'e.reversal_id'): string => [moveLots, movePayers, moveTotal, recordChanges(reversalId)].join(', ')

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
    'UPDATE SET balance = ledger_totals.balance RETURNING balance, held',
  lockTotalForSpend: 'SELECT balance, held FROM ledger_totals WHERE ledger_id = $1 FOR UPDATE',
  // A dry run locks nothing: it may run in a READ ONLY transaction, where FOR UPDATE is refused.
  total: 'SELECT balance FROM ledger_totals WHERE ledger_id = $1',
  // A batch's ids must be consecutive: see addBatch.
  lockTransactions: 'LOCK TABLE point_transactions IN EXCLUSIVE MODE',
  // Each payer's balance and held points (0 when it has none yet) and whether a negative add has drawn any of its
  // lots: only then can a backdated add have draws to take over.
  payers:
    'SELECT p.payer, coalesce(b.balance, 0) AS balance, coalesce(b.held, 0) AS held, EXISTS ' +
    '(SELECT 1 FROM point_lots AS l ' +
    'WHERE l.ledger_id = $1 AND l.payer = p.payer AND l.adjusted > 0) AS adjusted FROM ' +
    'unnest($2::text[]) AS p (payer) LEFT JOIN payer_balances AS b ON b.ledger_id = $1 AND ' +
    'b.payer = p.payer',
  // Adds in order (ids follow the arrays' order), and a lot for each positive one. One already
  // past its expiry ($6 is now) is stored expired, with its expiration dated at its expires_at.
  insertAdds:
    'WITH t AS (INSERT INTO point_transactions (ledger_id, payer, points, ts, expires_at, ' +
    'created_at) SELECT $1, a.payer, a.points, a.ts, a.expires_at, $6 FROM unnest($2::text[], ' +
    '$3::bigint[], $4::text[], $5::text[]) AS a (payer, points, ts, expires_at) RETURNING id, ' +
    'payer, points, ts, expires_at, expires_at <= $6 AS expired), lots AS (INSERT INTO point_lots ' +
    '(transaction_id, ledger_id, payer, ts, expires_at, points, remaining, expired) SELECT id, $1, ' +
    'payer, ts, expires_at, points, CASE WHEN expired THEN 0 ELSE points END, CASE WHEN expired ' +
    'THEN points ELSE 0 END FROM t WHERE points > 0), expirations AS (INSERT INTO ' +
    'point_expirations (ledger_id, lot_id, payer, points, expired_at, created_at) SELECT $1, id, ' +
    'payer, points, expires_at, $6 FROM t WHERE points > 0 AND expired ORDER BY id) SELECT ' +
    'max(id) AS last_id FROM t',
  // Spendable lots in drawing order, a page after the cursor ($2, $3) at a time (partial index).
  lotsPage:
    'SELECT transaction_id, payer, remaining, ts, expires_at FROM point_lots WHERE ledger_id = $1 ' +
    `AND remaining > 0 AND (ts, transaction_id) > ($2, $3) ORDER BY ts, transaction_id LIMIT ${LOT_PAGE}`,
  // POINTS_DRAW_ORDER=expiry: soonest expiry first, lots that never expire last, after the cursor
  // ($2, $3, $4). The expression is the index point_lots_spendable_expiry's, which the planner needs.
  lotsPageByExpiry:
    'SELECT transaction_id, payer, remaining, ts, expires_at FROM point_lots WHERE ledger_id = $1 ' +
    "AND remaining > 0 AND (coalesce(expires_at, '~'), ts, transaction_id) > ($2, $3, $4) ORDER " +
    `BY coalesce(expires_at, '~'), ts, transaction_id LIMIT ${LOT_PAGE}`,
  payerLotsPage:
    'SELECT transaction_id, payer, remaining, ts FROM point_lots WHERE ledger_id = $1 AND ' +
    'payer = $2 AND remaining > 0 AND (ts, transaction_id) > ($3, $4) ORDER BY ts, ' +
    `transaction_id LIMIT ${LOT_PAGE}`,
  // What each negative add still draws from the payer's lots newer than $3 and not past their
  // expiry at $6 (an expired lot's draws are final): newest lots, then newest adds, first; a page
  // of lots before the cursor ($4, $5) at a time. LATERAL: each lot's draws through their index,
  // rather than a hash of every draw of every lot.
  sharesPage:
    'SELECT l.transaction_id AS lot_id, l.ts, d.adjustment_id, d.points FROM (SELECT ' +
    'transaction_id, ts FROM point_lots WHERE ledger_id = $1 AND payer = $2 AND adjusted > 0 ' +
    'AND ts > $3 AND (ts, transaction_id) < ($4, $5) AND (expires_at IS NULL OR expires_at > $6) ' +
    `ORDER BY ts DESC, transaction_id DESC LIMIT ${LOT_PAGE}) AS l CROSS JOIN LATERAL (SELECT ` +
    'adjustment_id, sum(points)::bigint AS points FROM point_adjustment_draws WHERE lot_id = ' +
    'l.transaction_id GROUP BY adjustment_id HAVING sum(points) > 0) AS d ORDER BY l.ts DESC, ' +
    'l.transaction_id DESC, d.adjustment_id DESC',
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
  // once, points negative) with a history row each, and the ledger's total moved: one statement,
  // because every round trip made while the ledger's row is held is one more wait for every
  // other spend of it.
  recordSpend:
    'WITH spend AS (INSERT INTO point_spends (ledger_id, points, created_at) VALUES ($1, $2, $3) ' +
    'RETURNING id), drawn AS (UPDATE point_lots AS l SET remaining = l.remaining - d.points ' +
    'FROM unnest($4::bigint[], $5::bigint[]) AS d (lot_id, points) WHERE l.transaction_id = ' +
    'd.lot_id), debit AS (UPDATE payer_balances AS b SET balance = b.balance + m.points FROM ' +
    'unnest($6::text[], $7::bigint[]) AS m (payer, points) WHERE b.ledger_id = $1 AND b.payer = ' +
    'm.payer RETURNING b.payer, b.balance), total AS (UPDATE ledger_totals SET balance = balance ' +
    '- $2 WHERE ledger_id = $1), history AS (INSERT INTO point_balance_history (ledger_id, payer, ' +
    `at, balance) SELECT $1, payer, $3, balance FROM debit ${UPSERT_HISTORY}) INSERT INTO point_spend_draws ` +
    '(spend_id, seq, lot_id, points) SELECT spend.id, d.seq, d.lot_id, d.points FROM spend, ' +
    'unnest($4::bigint[], $5::bigint[]) WITH ORDINALITY AS d (lot_id, points, seq)',
  // Payers' balances move by their points (each payer once; its first add creates its row, even
  // at 0), and the ledger's total by $4; each payer gets a history row at $5. A negative move is
  // an UPDATE: PostgreSQL checks the proposed row of an INSERT against
  // CHECK (balance >= 0) before ON CONFLICT.
  moveBalances:
    'WITH credit AS (INSERT INTO payer_balances (ledger_id, payer, balance) SELECT $1, m.payer, ' +
    'm.points FROM unnest($2::text[], $3::bigint[]) AS m (payer, points) WHERE m.points >= 0 ON ' +
    'CONFLICT (ledger_id, payer) DO UPDATE SET balance = payer_balances.balance + ' +
    'excluded.balance RETURNING payer, balance), debit AS (UPDATE payer_balances AS b SET ' +
    'balance = b.balance + m.points FROM unnest($2::text[], $3::bigint[]) AS m (payer, points) ' +
    'WHERE m.points < 0 AND b.ledger_id = $1 AND b.payer = m.payer RETURNING b.payer, ' +
    'b.balance), total AS (UPDATE ledger_totals SET balance = balance + $4 WHERE ledger_id = $1) ' +
    'INSERT INTO point_balance_history (ledger_id, payer, at, balance) SELECT $1, payer, $5, ' +
    `balance FROM credit UNION ALL SELECT $1, payer, $5, balance FROM debit ${UPSERT_HISTORY}`,
  balances: 'SELECT payer, balance AS points FROM payer_balances WHERE ledger_id = $1 ORDER BY payer',
  // The pages of a ledger's history are a range of its (ledger_id, id) index, read downwards
  // from the cursor: "ledger_id >= $1" rather than "= $1", so that the planner cannot walk the
  // primary key backwards instead, filtering by ledger, which for a ledger with only old rows
  // would read most of the table.
  transactionsPage:
    'SELECT t.id, t.payer, t.points, t.ts, t.created_at, t.expires_at, l.remaining, l.expired ' +
    'FROM point_transactions AS t LEFT JOIN point_lots AS l ON l.transaction_id = t.id WHERE ' +
    '(t.ledger_id, t.id) < ($1, $2) AND t.ledger_id >= $1 ORDER BY t.ledger_id DESC, t.id DESC LIMIT $3',
  adjustmentDrawsOf:
    'SELECT d.adjustment_id AS owner_id, l.transaction_id, l.payer, l.ts, ' +
    'sum(d.points)::bigint AS points FROM point_adjustment_draws AS d JOIN point_lots AS l ON ' +
    'l.transaction_id = d.lot_id WHERE d.adjustment_id = ANY ($1::bigint[]) GROUP BY ' +
    'd.adjustment_id, l.transaction_id HAVING sum(d.points) <> 0 ORDER BY d.adjustment_id, ' +
    'l.ts, l.transaction_id',
  spendsPage:
    'SELECT id, points, created_at, reversed FROM point_spends WHERE (ledger_id, id) < ($1, $2) ' +
    'AND ledger_id >= $1 ORDER BY ledger_id DESC, id DESC LIMIT $3',
  spendDrawsOf:
    'SELECT d.spend_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.spend_id = ANY ($1::bigint[]) ORDER BY d.spend_id, d.seq',

  // ---- Expiry, holds and reversals (issue 13) ----

  // What came due in ledger $1 by $2, through the partial indexes on expiry: its lots past
  // expiry with available points (kind 0, by expires_at, id), then its pending holds past expiry
  // with their draws in order (kind 1, by expires_at, id, seq).
  due:
    'SELECT 0 AS kind, expires_at AS at, transaction_id AS owner, 0::bigint AS seq, ' +
    'transaction_id AS lot_id, payer, expires_at, remaining AS points FROM point_lots WHERE ' +
    'ledger_id = $1 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $2 UNION ALL ' +
    'SELECT 1, h.expires_at, h.id, d.seq, d.lot_id, l.payer, l.expires_at, d.points FROM ' +
    'point_holds AS h JOIN point_hold_draws AS d ON d.hold_id = h.id JOIN point_lots AS l ON ' +
    "l.transaction_id = d.lot_id WHERE h.ledger_id = $1 AND h.status = 'pending' AND " +
    'h.expires_at IS NOT NULL AND h.expires_at <= $2 ORDER BY kind, at, owner, seq',
  isDue:
    'SELECT EXISTS (SELECT 1 FROM point_lots WHERE ledger_id = $1 AND remaining > 0 AND ' +
    'expires_at IS NOT NULL AND expires_at <= $2) OR EXISTS (SELECT 1 FROM point_holds WHERE ' +
    "ledger_id = $1 AND status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $2) AS due",
  // The sweep's work list, walking the indexes on expiry: the ledgers of lots, then of holds,
  // each in the order of its first due item (SqlitePoints's order).
  dueLedgers:
    '(SELECT 0 AS kind, ledger_id, min(expires_at) AS first FROM point_lots WHERE remaining > 0 ' +
    'AND expires_at IS NOT NULL AND expires_at <= $1 GROUP BY ledger_id ORDER BY first, ' +
    'ledger_id LIMIT $2) UNION ALL (SELECT 1, ledger_id, min(expires_at) FROM point_holds WHERE ' +
    "status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1 GROUP BY ledger_id ORDER " +
    'BY 3, 2 LIMIT $2) ORDER BY kind, first, ledger_id',
  // A settling's moves, its holds expired ($11 ids, $12 when), and each moved payer's balance
  // before them, for the history rows (written later, with the expirations: see #settle).
  settleChanges:
    `WITH ${moveLots}, ${movePayers}, ${moveTotal}, expire AS (UPDATE point_holds AS h SET ` +
    "status = 'expired', resolved_at = r.at FROM unnest($11::bigint[], $12::text[]) AS r " +
    "(hold_id, at) WHERE h.id = r.hold_id AND h.status = 'pending') SELECT payer, balance - " +
    'available AS before FROM payers',
  // A settling's expirations and history rows, in order, once the write is sure to go ahead.
  recordSettled:
    'WITH e AS (INSERT INTO point_expirations (ledger_id, lot_id, payer, points, expired_at, ' +
    'hold_id, reversal_id, created_at) SELECT $1, lot_id, payer, points, expired_at, hold_id, ' +
    'reversal_id, $2 FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], ' +
    '$7::bigint[], $8::bigint[]) WITH ORDINALITY AS e (lot_id, payer, points, expired_at, ' +
    'hold_id, reversal_id, n) ORDER BY n) INSERT INTO point_balance_history (ledger_id, payer, ' +
    'at, balance) SELECT $1, payer, at, balance FROM unnest($9::text[], $10::text[], ' +
    `$11::bigint[]) AS h (payer, at, balance) ${UPSERT_HISTORY}`,
  // A hold ($19 points, $20 expires_at) and its draws ($21 lots, $22 points) with its moves.
  insertHold:
    `WITH ${applyChanges()}, hold AS (INSERT INTO point_holds (ledger_id, points, status, ` +
    "expires_at, created_at) VALUES ($1, $19, 'pending', $20, $11) RETURNING id), draws AS " +
    '(INSERT INTO point_hold_draws (hold_id, seq, lot_id, points) SELECT hold.id, d.seq, ' +
    'd.lot_id, d.points FROM hold, unnest($21::bigint[], $22::bigint[]) WITH ORDINALITY AS d ' +
    '(lot_id, points, seq)) SELECT id FROM hold',
  // Hold $19 captured: $20 points into a new spend drawing $21 lots, $22 points; the rest released.
  // Only a pending hold resolves: the status in the WHERE makes a second resolution a no-op.
  captureHold:
    `WITH ${applyChanges()}, spend AS (INSERT INTO point_spends (ledger_id, points, created_at) ` +
    'VALUES ($1, $20, $11) RETURNING id), draws AS (INSERT INTO point_spend_draws (spend_id, ' +
    'seq, lot_id, points) SELECT spend.id, d.seq, d.lot_id, d.points FROM spend, ' +
    'unnest($21::bigint[], $22::bigint[]) WITH ORDINALITY AS d (lot_id, points, seq)), resolve ' +
    "AS (UPDATE point_holds SET status = 'captured', resolved_at = $11, captured = $20, spend_id " +
    "= (SELECT id FROM spend) WHERE id = $19 AND status = 'pending') SELECT id FROM spend",
  voidHold:
    `WITH ${applyChanges()}, resolve AS (UPDATE point_holds SET status = 'voided', resolved_at = ` +
    "$11 WHERE id = $19 AND status = 'pending') SELECT count(*) AS moved FROM payers",
  // A reversal of $20 points of spend $19, its draws ($21 lots, $22 points) and its moves; the
  // points that expire at once name it.
  insertReversal:
    'WITH reversal AS (INSERT INTO point_reversals (ledger_id, spend_id, points, created_at) ' +
    `VALUES ($1, $19, $20, $11) RETURNING id), ${applyChanges('(SELECT id FROM reversal)')}, ` +
    'draws AS (INSERT INTO point_reversal_draws (reversal_id, seq, lot_id, points) SELECT ' +
    'reversal.id, d.seq, d.lot_id, d.points FROM reversal, unnest($21::bigint[], $22::bigint[]) ' +
    'WITH ORDINALITY AS d (lot_id, points, seq)), reversed AS (UPDATE point_spends SET reversed ' +
    '= reversed + $20 WHERE id = $19) SELECT id FROM reversal',
  // A hold of ledger $1 with its draws in order (their lots' payer, ts and expiry).
  hold:
    'SELECT h.id, h.points, h.status, h.expires_at, h.created_at, h.captured, h.spend_id, (SELECT ' +
    "json_agg(json_build_object('lotId', d.lot_id, 'payer', l.payer, 'ts', l.ts, 'expiresAt', " +
    "l.expires_at, 'points', d.points) ORDER BY d.seq) FROM point_hold_draws AS d JOIN " +
    'point_lots AS l ON l.transaction_id = d.lot_id WHERE d.hold_id = h.id) AS draws FROM ' +
    'point_holds AS h WHERE h.id = $2 AND h.ledger_id = $1',
  holdsPage:
    'SELECT id, points, status, expires_at, created_at, captured, spend_id FROM point_holds WHERE ' +
    '(ledger_id, id) < ($1, $2) AND ledger_id >= $1 ORDER BY ledger_id DESC, id DESC LIMIT $3',
  // (status, id) rather than "status = $2 AND id < $3": the planner could walk the primary key
  // backwards instead, filtering, as it would the pages above.
  holdsPageByStatus:
    'SELECT id, points, status, expires_at, created_at, captured, spend_id FROM point_holds WHERE ' +
    'ledger_id = $1 AND (status, id) < ($2, $3) AND status >= $2 ORDER BY status DESC, id DESC LIMIT $4',
  holdDrawsOf:
    'SELECT d.hold_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_hold_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.hold_id = ANY ($1::bigint[]) ORDER BY d.hold_id, d.seq',
  // A spend of ledger $1 with its draws in order (their lots' payer, ts and expiry).
  spend:
    'SELECT s.id, s.points, s.reversed, (SELECT json_agg(json_build_object(\'lotId\', d.lot_id, ' +
    "'payer', l.payer, 'ts', l.ts, 'expiresAt', l.expires_at, 'points', d.points) ORDER BY " +
    'd.seq) FROM point_spend_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id ' +
    'WHERE d.spend_id = s.id) AS draws FROM point_spends AS s WHERE s.id = $2 AND s.ledger_id = $1',
  spendExists: 'SELECT 1 FROM point_spends WHERE id = $2 AND ledger_id = $1',
  reversalsPage:
    'SELECT id, spend_id, points, created_at FROM point_reversals WHERE (spend_id, id) < ($1, $2) ' +
    'AND spend_id >= $1 ORDER BY spend_id DESC, id DESC LIMIT $3',
  reversalDrawsOf:
    'SELECT d.reversal_id AS owner_id, d.lot_id AS transaction_id, l.payer, l.ts, d.points FROM ' +
    'point_reversal_draws AS d JOIN point_lots AS l ON l.transaction_id = d.lot_id WHERE ' +
    'd.reversal_id = ANY ($1::bigint[]) ORDER BY d.reversal_id, d.seq',
  expirationsPage:
    'SELECT id, lot_id AS transaction_id, payer, points, expired_at FROM point_expirations WHERE ' +
    '(ledger_id, id) < ($1, $2) AND ledger_id >= $1 ORDER BY ledger_id DESC, id DESC LIMIT $3',
  // Every payer with its next expirations: the lots with available points and an expiry, summed
  // per expires_at, at most 10, through point_lots_payer_expiring.
  payerDetails:
    'SELECT b.payer, b.balance AS available, b.held, coalesce((SELECT json_agg(json_build_object(' +
    "'expires_at', e.expires_at, 'points', e.points) ORDER BY e.expires_at) FROM (SELECT " +
    'expires_at, sum(remaining)::bigint AS points FROM point_lots WHERE ledger_id = $1 AND payer ' +
    '= b.payer AND remaining > 0 AND expires_at IS NOT NULL GROUP BY expires_at ORDER BY ' +
    "expires_at LIMIT 10) AS e), '[]') AS expiring FROM payer_balances AS b WHERE b.ledger_id = " +
    '$1 ORDER BY b.payer',
  // Per payer, the latest history row at or before $2: one seek of point_balance_history_at.
  balancesAt:
    'SELECT b.payer, (SELECT h.balance FROM point_balance_history AS h WHERE h.ledger_id = ' +
    'b.ledger_id AND h.payer = b.payer AND h.at <= $2 ORDER BY h.at DESC LIMIT 1) AS ' +
    'points FROM payer_balances AS b WHERE b.ledger_id = $1 ORDER BY b.payer'
} as const

const sql = pgPointsSql

interface LotRow extends Lot { ts: string, expires_at: string | null }
interface ShareRow { lot_id: number, ts: string, adjustment_id: number, points: number }
interface PayerRow extends Holding { payer: string, adjusted: boolean }
interface DueRow { kind: number, at: string, owner: number, seq: number, lot_id: number, payer: string, expires_at: string | null, points: number }
type HeldDrawRow = HeldDraw & LotDrawRow

/** What a settling wrote but its expirations and history rows, which wait for the write to go ahead. */
interface Settled {
  /** How far the ledger's total moved. */
  total: number
  /** How far the ledger's held points moved. */
  held: number
  expirations: Expiration[]
  history: HistoryRow[]
}

const NOTHING_DUE: Settled = { total: 0, held: 0, expirations: [], history: [] }

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

/** The ledger's points once a settling moved them. */
function afterSettling (locked: Holding, settled: Settled): Holding {
  return { balance: locked.balance + settled.total, held: locked.held + settled.held }
}

/** The values of applyChanges ($1..$18): `changes` of ledger `ledgerId`, all at `now`. */
function changeValues (ledgerId: number, changes: LedgerChanges, now: string): unknown[] {
  const deltas = [...changes.lots.values()]
  const payers = changes.payers()
  const moves = changes.payerMoves()
  const e = changes.expirations
  return [
    ledgerId, [...changes.lots.keys()], deltas.map(d => d.remaining), deltas.map(d => d.held), deltas.map(d => d.expired),
    deltas.map(d => d.restored), payers, payers.map(payer => moves.get(payer) ?? 0), payers.map(payer => changes.held.get(payer) ?? 0),
    changes.total(), now, [...new Set(changes.moves.map(move => move.payer))],
    e.map(x => x.lotId), e.map(x => x.payer), e.map(x => x.points), e.map(x => x.expiredAt), e.map(x => x.holdId), e.map(x => x.reversalId)
  ]
}

/**
 * The points ledgers on PostgreSQL: the same rows as SqlitePoints (./sqlite.ts), the same rules
 * (./ledger.ts), the same answers. Writes are Work for the engine's transaction, READ COMMITTED
 * or SERIALIZABLE, with several tally processes on one database.
 *
 * Locks, always in this order:
 * 1. the ledger's `ledger_totals` row, first thing in every write of its points (after checking
 *    that a user's ledger has its user, which locks nothing). Every other row of the ledger's
 *    points (payer balances, lots, holds, spends, draws) is then touched by the row's holder
 *    only, so those are read without locks: under READ COMMITTED each later statement sees what
 *    the previous holder committed; under SERIALIZABLE a holder whose snapshot is older fails
 *    with 40001 and is run again by PgTransactions. A ledger with no row has no points: nothing
 *    to settle, hold, capture, void or reverse.
 * 2. point_transactions IN EXCLUSIVE MODE, in a batch only, once its adds are checked.
 *
 * Every write settles its ledger first (./ledger.ts settle). A refusal is decided before anything
 * is inserted, so a refused write draws no id from a sequence (which a rollback would not give
 * back): ids follow SQLite's. So a settling's UPDATEs go first, and the write reads what they
 * left, but its expirations and history rows are inserted once the write is sure to go ahead.
 */
export class PgPoints implements PointsStore {
  readonly #reads: PgTransactions
  readonly #now: () => Date
  readonly #drawOrder: DrawOrder

  constructor (reads: PgTransactions, now: () => Date, drawOrder: DrawOrder = 'timestamp') {
    this.#reads = reads
    this.#now = now
    this.#drawOrder = drawOrder
  }

  async #assertLedger (tx: PgTx, ledgerId: number): Promise<void> {
    if (ledgerId !== 0 && (await tx.query(sql.userExists, [ledgerId])).length === 0) throw new UserNotFound(ledgerId)
  }

  /** Locks the ledger's total row, creating it at 0 if need be, and answers its points. */
  async #lockForAdd (tx: PgTx, ledgerId: number): Promise<Holding> {
    const [row] = await tx.query<Holding>(sql.lockTotalForAdd, [ledgerId])
    return row!
  }

  /** Locks the ledger's total row and answers its points; undefined: the ledger has no points. */
  async #lock (tx: PgTx, ledgerId: number): Promise<Holding | undefined> {
    const [row] = await tx.query<Holding>(sql.lockTotalForSpend, [ledgerId])
    return row
  }

  async #payers (tx: PgTx, ledgerId: number, payers: string[]): Promise<Map<string, PayerRow>> {
    const rows = await tx.query<PayerRow>(sql.payers, [ledgerId, payers])
    return new Map(rows.map(row => [row.payer, row]))
  }

  /**
   * Settles what came due in the locked ledger by `now` (./ledger.ts settle): writes its lots',
   * payers', total's and holds' moves, and answers the expirations and history rows, for #record
   * to insert once the write is sure to go ahead. One round trip when nothing is due.
   */
  async #settle (tx: PgTx, ledgerId: number, now: string): Promise<Settled> {
    const rows = await tx.query<DueRow>(sql.due, [ledgerId, now])
    if (rows.length === 0) return NOTHING_DUE
    const lots: DueLot[] = []
    const holds: DueHold[] = []
    for (const row of rows) {
      if (row.kind === 0) {
        lots.push({ lotId: row.lot_id, payer: row.payer, expiresAt: row.at, remaining: row.points })
        continue
      }
      const draw = { lotId: row.lot_id, payer: row.payer, expiresAt: row.expires_at, points: row.points }
      const hold = holds[holds.length - 1]
      if (hold?.holdId === row.owner) hold.draws.push(draw)
      else holds.push({ holdId: row.owner, expiresAt: row.at, draws: [draw] })
    }
    const changes = new LedgerChanges()
    const expired = settle(lots, holds, now, changes)
    const before = await tx.query<{ payer: string, before: number }>(sql.settleChanges,
      [...changeValues(ledgerId, changes, now).slice(0, 10), expired.map(hold => hold.holdId), expired.map(hold => hold.at)])
    return { total: changes.total(), held: changes.totalHeld(), expirations: changes.expirations, history: changes.history(new Map(before.map(row => [row.payer, row.before]))) }
  }

  /** Inserts a settling's expirations and history rows (dated `now`): before any of the write's own. */
  async #record (tx: PgTx, ledgerId: number, settled: Settled, now: string): Promise<void> {
    const { expirations: e, history: h } = settled
    if (e.length === 0 && h.length === 0) return
    await tx.query(sql.recordSettled, [ledgerId, now, e.map(x => x.lotId), e.map(x => x.payer), e.map(x => x.points),
      e.map(x => x.expiredAt), e.map(x => x.holdId), e.map(x => x.reversalId), h.map(x => x.payer), h.map(x => x.at), h.map(x => x.balance)])
  }

  /** What an add puts in its payer's balance: nothing if it is already past its expiry. */
  #available (add: NewAdd, now: string): number {
    return add.expiresAt !== undefined && add.expiresAt <= now ? 0 : add.points
  }

  add (ledgerId: number, add: NewAdd): PostgresWork<StoredAdd> {
    return postgresWork(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const locked = await this.#lockForAdd(tx, ledgerId)
      const createdAt = this.#now().toISOString()
      const settled = await this.#settle(tx, ledgerId, createdAt)
      const ledger = afterSettling(locked, settled)
      const payer = (await this.#payers(tx, ledgerId, [add.payer])).get(add.payer)!
      const points = this.#available(add, createdAt)
      checkAdd({ ...add, points }, payer, () => ledger)
      await this.#record(tx, ledgerId, settled, createdAt)
      const id = await this.#storeAdd(tx, ledgerId, add, createdAt, payer.adjusted)
      await this.#moveBalances(tx, ledgerId, [add.payer], [points], points, createdAt)
      const stored: StoredAdd = { id, payer: add.payer, points: add.points, timestamp: formatTimestamp(add.ts) }
      if (add.expiresAt !== undefined) stored.expires_at = formatTimestamp(add.expiresAt)
      return stored
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
      const locked = await this.#lockForAdd(tx, ledgerId)
      const createdAt = this.#now().toISOString()
      const settled = await this.#settle(tx, ledgerId, createdAt)
      // The adds as the iterator hands them over; a refusal of its own comes after theirs.
      const list: NewAdd[] = []
      let iteratorRefused: { err: unknown } | undefined
      try {
        for (const add of adds) list.push(add)
      } catch (err) {
        iteratorRefused = { err }
      }
      // In the order each payer first appears: the order of their history rows.
      const names = [...new Set(list.map(add => add.payer))]
      const payers = await this.#payers(tx, ledgerId, names)
      const balances = new Map([...payers].map(([name, payer]) => [name, payer.balance]))
      const ledger = afterSettling(locked, settled)
      const before = ledger.balance
      let total = before
      const totalNow = (): Holding => ({ balance: total, held: ledger.held })
      list.forEach((add, index) => {
        const points = this.#available(add, createdAt)
        try {
          checkAdd({ ...add, points }, { balance: balances.get(add.payer)!, held: payers.get(add.payer)!.held }, totalNow)
        } catch (err) {
          throw batchRejected(index, err)
        }
        balances.set(add.payer, balances.get(add.payer)! + points)
        total += points
      })
      if (iteratorRefused !== undefined) throw batchRejected(list.length, iteratorRefused.err)
      await this.#record(tx, ledgerId, settled, createdAt)

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
        // An add already past its expiry takes nothing over: it is stored expired, as a plain one.
        if (add.points > 0 && (!payer.adjusted || this.#available(add, createdAt) === 0)) {
          plain.push(add)
          if (plain.length === INSERT_CHUNK) await insertPlain()
        } else {
          await insertPlain()
          last = await this.#storeAdd(tx, ledgerId, add, createdAt, true)
          payer.adjusted ||= add.points < 0
        }
      }
      await insertPlain()
      await this.#moveBalances(tx, ledgerId, names, names.map(name => balances.get(name)! - payers.get(name)!.balance), total - before, createdAt)
      return { count: list.length, first_id: last - list.length + 1, last_id: last }
    })
  }

  /** Inserts adds in order; answers the last one's id (the ids are consecutive). */
  async #insertAdds (tx: PgTx, ledgerId: number, adds: NewAdd[], createdAt: string): Promise<number> {
    const [row] = await tx.query<{ last_id: number }>(sql.insertAdds,
      [ledgerId, adds.map(add => add.payer), adds.map(add => add.points), adds.map(add => add.ts), adds.map(add => add.expiresAt ?? null), createdAt])
    return row!.last_id
  }

  /**
   * Stores an add checkAdd accepted and moves points between lots; the caller moves the balance
   * rows. `mayBeAdjusted` false: no lot of this payer has points a negative add took, so a
   * positive add has no draws to take over. An add already past its expiry is stored expired,
   * with its expiration, and takes over nothing.
   */
  async #storeAdd (tx: PgTx, ledgerId: number, add: NewAdd, createdAt: string, mayBeAdjusted: boolean): Promise<number> {
    const id = await this.#insertAdds(tx, ledgerId, [add], createdAt)
    if (add.points < 0) await this.#adjustOldestFirst(tx, ledgerId, id, add, createdAt)
    else if (mayBeAdjusted && this.#available(add, createdAt) > 0) await this.#moveAdjustmentsOnto(tx, ledgerId, id, add, createdAt)
    return id
  }

  /** A negative add takes its points from the payer's oldest lots that still have points. */
  async #adjustOldestFirst (tx: PgTx, ledgerId: number, adjustmentId: number, add: NewAdd, createdAt: string): Promise<void> {
    const { rows } = await readUntilCovered<Lot & { ts: string }>(-add.points, lot => lot.remaining, async after => {
      const rows = await tx.query<Lot & { ts: string }>(sql.payerLotsPage,
        [ledgerId, add.payer, after?.ts ?? BEFORE_ANY_TS, after?.transaction_id ?? 0])
      return { rows, last: rows.length < LOT_PAGE }
    })
    const takes = drawOldestFirst(rows, -add.points)
    await this.#adjust(tx, takes.map(() => adjustmentId), takes.map(take => take.lotId), takes.map(take => take.points), adjustmentId, createdAt)
  }

  /** A backdated add takes over what negative adds drew from newer unexpired lots (takeOverDraws). */
  async #moveAdjustmentsOnto (tx: PgTx, ledgerId: number, lotId: number, add: NewAdd, createdAt: string): Promise<void> {
    const { rows } = await readUntilCovered<ShareRow>(add.points, share => share.points, async after => {
      const rows = await tx.query<ShareRow>(sql.sharesPage,
        [ledgerId, add.payer, add.ts, after?.ts ?? AFTER_ANY_TS, after?.lot_id ?? 0, createdAt])
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

  /** Moves each payer's balance and records it at `at`, in `payers`' order, and the total. */
  async #moveBalances (tx: PgTx, ledgerId: number, payers: string[], points: number[], total: number, at: string): Promise<void> {
    await tx.query(sql.moveBalances, [ledgerId, payers, points, total, at])
  }

  /**
   * The ledger's available lots in the draw order (POINTS_DRAW_ORDER), a page at a time until
   * they hold `points`. Not covered: the lots hold less than the total said.
   */
  async #drawableLots (tx: PgTx, ledgerId: number, points: number): Promise<{ rows: LotRow[], covered: boolean }> {
    return await readUntilCovered<LotRow>(points, lot => lot.remaining, async after => {
      const rows = this.#drawOrder === 'expiry'
        ? await tx.query<LotRow>(sql.lotsPageByExpiry,
          [ledgerId, after === undefined ? BEFORE_ANY_TS : after.expires_at ?? NEVER, after?.ts ?? BEFORE_ANY_TS, after?.transaction_id ?? 0])
        : await tx.query<LotRow>(sql.lotsPage, [ledgerId, after?.ts ?? BEFORE_ANY_TS, after?.transaction_id ?? 0])
      return { rows, last: rows.length < LOT_PAGE }
    })
  }

  /** Under the row's lock the lots hold the total exactly, unless the database is corrupt. */
  #corrupt (ledgerId: number, total: number): Error {
    return new Error(`ledger ${ledgerId}: its total says ${total} points but its lots hold fewer; run db:check`)
  }

  spend (ledgerId: number, points: number, dryRun: boolean): PostgresWork<PayerPoints[]> {
    return postgresWork(async tx => {
      await this.#assertLedger(tx, ledgerId)
      let total: number
      let settled = NOTHING_DUE
      let createdAt: string
      if (dryRun) {
        // A dry run writes nothing, so it settles nothing: the route settles a due ledger first.
        const [row] = await tx.query<{ balance: number }>(sql.total, [ledgerId])
        total = row?.balance ?? 0
        createdAt = this.#now().toISOString()
      } else {
        const locked = await this.#lock(tx, ledgerId)
        // Read once the lock is held, as in every write: the ledger's changes are then dated in
        // the order they commit, so each payer's history (GET /balance?at=) ends at its balance.
        createdAt = this.#now().toISOString()
        if (locked !== undefined) settled = await this.#settle(tx, ledgerId, createdAt)
        total = (locked?.balance ?? 0) + settled.total
      }
      if (total < points) throw new InsufficientPoints(points, total)
      const { rows, covered } = await this.#drawableLots(tx, ledgerId, points)
      if (!covered) {
        if (dryRun) throw new LedgerChangedDuringRead()
        throw this.#corrupt(ledgerId, total)
      }
      const takes = drawOldestFirst(rows, points)
      const result = byPayer(takes)
      if (dryRun) return result
      await this.#record(tx, ledgerId, settled, createdAt)
      await tx.query(sql.recordSpend, [ledgerId, points, createdAt, takes.map(take => take.lotId),
        takes.map(take => take.points), result.map(p => p.payer), result.map(p => p.points)])
      return result
    })
  }

  // ---- Expiry, holds and reversals ----

  /**
   * Checks the ledger, locks it, settles it at now: answers now, the ledger's points after
   * settling (undefined: it has none) and what the settling has yet to insert.
   */
  async #begin (tx: PgTx, ledgerId: number): Promise<{ now: string, ledger: Holding | undefined, settled: Settled }> {
    await this.#assertLedger(tx, ledgerId)
    const locked = await this.#lock(tx, ledgerId)
    const now = this.#now().toISOString()
    if (locked === undefined) return { now, ledger: undefined, settled: NOTHING_DUE }
    const settled = await this.#settle(tx, ledgerId, now)
    return { now, ledger: afterSettling(locked, settled), settled }
  }

  settle (ledgerId: number): PostgresWork<void> {
    return postgresWork(async tx => {
      if (await this.#lock(tx, ledgerId) === undefined) return
      const now = this.#now().toISOString()
      await this.#record(tx, ledgerId, await this.#settle(tx, ledgerId, now), now)
    })
  }

  async due (ledgerId: number): Promise<boolean> {
    return await this.#reads.run(async tx => {
      const [row] = await tx.query<{ due: boolean }>(sql.isDue, [ledgerId, this.#now().toISOString()])
      return row!.due
    }, { readOnly: true })
  }

  async dueLedgers (limit: number): Promise<number[]> {
    return await this.#reads.run(async tx => {
      const rows = await tx.query<{ ledger_id: number }>(sql.dueLedgers, [this.#now().toISOString(), limit])
      return [...new Set(rows.map(row => row.ledger_id))].slice(0, limit)
    }, { readOnly: true })
  }

  hold (ledgerId: number, points: number, expiresAt: string | null): PostgresWork<HoldView> {
    return postgresWork(async tx => {
      const { now: createdAt, ledger, settled } = await this.#begin(tx, ledgerId)
      const total = ledger?.balance ?? 0
      if (expiresAt !== null && expiresAt <= createdAt) throw new InvalidExpiry('of a hold must be later than now')
      if (total < points) throw new InsufficientPoints(points, total)
      const { rows, covered } = await this.#drawableLots(tx, ledgerId, points)
      if (!covered) throw this.#corrupt(ledgerId, total)
      const takes = drawLots(rows, points)
      await this.#record(tx, ledgerId, settled, createdAt)
      const changes = new LedgerChanges()
      for (const { lot, points } of takes) changes.hold({ lotId: lot.transaction_id, payer: lot.payer, expiresAt: lot.expires_at }, points, createdAt)
      const [hold] = await tx.query<{ id: number }>(sql.insertHold, [...changeValues(ledgerId, changes, createdAt), points, expiresAt,
        takes.map(({ lot }) => lot.transaction_id), takes.map(take => take.points)])
      return {
        id: hold!.id,
        points,
        status: 'pending',
        drawn_from: takes.map(({ lot, points }) => lotDraw({ lotId: lot.transaction_id, payer: lot.payer, ts: lot.ts, points })),
        expires_at: expiresAt === null ? null : formatTimestamp(expiresAt),
        created_at: createdAt
      }
    })
  }

  /** A hold of this ledger that is still pending (after settling), with its draws; refuses any other. */
  async #pendingHold (tx: PgTx, ledgerId: number, holdId: number): Promise<{ hold: HoldRow, draws: HeldDrawRow[] }> {
    const [row] = await tx.query<HoldRow & { draws: HeldDrawRow[] }>(sql.hold, [ledgerId, holdId])
    if (row === undefined) throw new HoldNotFound(holdId)
    const { draws, ...hold } = row
    if (hold.status !== 'pending') throw new HoldNotPending(holdId, hold.status)
    return { hold, draws }
  }

  capture (ledgerId: number, holdId: number, points: number | undefined): PostgresWork<CaptureView> {
    return postgresWork(async tx => {
      const { now, settled } = await this.#begin(tx, ledgerId)
      const { hold, draws } = await this.#pendingHold(tx, ledgerId, holdId)
      const captured = points ?? hold.points
      if (captured > hold.points) throw new CaptureExceedsHold(holdId, hold.points, captured)
      await this.#record(tx, ledgerId, settled, now)
      const split = splitHold(draws, captured)
      const changes = new LedgerChanges()
      for (const draw of split.captured) changes.capture(draw, draw.points)
      for (const draw of split.released) changes.release(draw, draw.points, now, holdId)
      const [spend] = await tx.query<{ id: number }>(sql.captureHold, [...changeValues(ledgerId, changes, now), holdId, captured,
        split.captured.map(draw => draw.lotId), split.captured.map(draw => draw.points)])
      const spent = byPayer(split.captured)
      return { ...holdView({ ...hold, status: 'captured', captured, spend_id: spend!.id }, draws), spent }
    })
  }

  void (ledgerId: number, holdId: number): PostgresWork<HoldView> {
    return postgresWork(async tx => {
      const { now, settled } = await this.#begin(tx, ledgerId)
      const { hold, draws } = await this.#pendingHold(tx, ledgerId, holdId)
      await this.#record(tx, ledgerId, settled, now)
      const changes = new LedgerChanges()
      for (const draw of draws) changes.release(draw, draw.points, now, holdId)
      await tx.query(sql.voidHold, [...changeValues(ledgerId, changes, now), holdId])
      return holdView({ ...hold, status: 'voided' }, draws)
    })
  }

  reverse (ledgerId: number, spendId: number, points: number | undefined): PostgresWork<ReversalView> {
    return postgresWork(async tx => {
      const { now, ledger = NO_POINTS, settled } = await this.#begin(tx, ledgerId)
      const [spend] = await tx.query<{ points: number, reversed: number, draws: HeldDrawRow[] }>(sql.spend, [ledgerId, spendId])
      if (spend === undefined) throw new SpendNotFound(spendId)
      const left = spend.points - spend.reversed
      const reversed = points ?? left
      if (left === 0) throw new SpendFullyReversed(spendId)
      if (reversed > left) throw new ReversalExceedsSpend(spendId, left, reversed)
      await this.#record(tx, ledgerId, settled, now)
      const restored = restoreNewestFirst(spend.draws, spend.reversed, reversed)
      const changes = new LedgerChanges()
      // Their expirations name the reversal the statement inserts (insertReversal).
      for (const draw of restored) changes.restore(draw, draw.points, now, 0)
      checkRestore(changes, await this.#payers(tx, ledgerId, changes.payers()), ledger)
      const [reversal] = await tx.query<{ id: number }>(sql.insertReversal, [...changeValues(ledgerId, changes, now), spendId, reversed,
        restored.map(draw => draw.lotId), restored.map(draw => draw.points)])
      return { id: reversal!.id, spend_id: spendId, points: reversed, restored_to: restored.map(lotDraw), created_at: now }
    })
  }

  async balances (ledgerId: number): Promise<PayerPoints[]> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      return await tx.query<PayerPoints>(sql.balances, [ledgerId])
    }, { readOnly: true })
  }

  async balanceDetails (ledgerId: number): Promise<PayerDetails[]> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      return (await tx.query<PayerDetails>(sql.payerDetails, [ledgerId])).map(row => ({
        ...row,
        expiring: row.expiring.map(e => ({ expires_at: formatTimestamp(e.expires_at), points: e.points }))
      }))
    }, { readOnly: true })
  }

  async balancesAt (ledgerId: number, at: string): Promise<PayerPoints[]> {
    if (at > this.#now().toISOString()) throw new InvalidTime('at', 'is in the future')
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      return (await tx.query<{ payer: string, points: number | null }>(sql.balancesAt, [ledgerId, at]))
        .filter((row): row is PayerPoints => row.points !== null)
    }, { readOnly: true })
  }

  async getHold (ledgerId: number, holdId: number): Promise<HoldView> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const [row] = await tx.query<HoldRow & { draws: LotDrawRow[] }>(sql.hold, [ledgerId, holdId])
      if (row === undefined) throw new HoldNotFound(holdId)
      const { draws, ...hold } = row
      return holdView(hold, draws)
    }, { readOnly: true })
  }

  /** The draws of a page of holds, spends, reversals or negative adds, grouped by owner (none: no query). */
  async #drawsOf (tx: PgTx, text: string, ids: number[]): Promise<Map<number, Draw[]>> {
    if (ids.length === 0) return new Map()
    return groupDraws(await tx.query<DrawRow>(text, [ids]))
  }

  async listHolds (ledgerId: number, status: HoldStatus | undefined, page: PageRequest): Promise<Page<HoldView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const rows = status === undefined
        ? await tx.query<HoldRow>(sql.holdsPage, [ledgerId, pageStart(page), page.limit + 1])
        : await tx.query<HoldRow>(sql.holdsPageByStatus, [ledgerId, status, pageStart(page), page.limit + 1])
      const { items, next_cursor: nextCursor } = toPage(rows, page.limit)
      const draws = await this.#drawsOf(tx, sql.holdDrawsOf, items.map(row => row.id))
      return { items: items.map(hold => holdView(hold, draws.get(hold.id)!)), next_cursor: nextCursor }
    }, { readOnly: true })
  }

  async listReversals (ledgerId: number, spendId: number, page: PageRequest): Promise<Page<ReversalView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      if ((await tx.query(sql.spendExists, [ledgerId, spendId])).length === 0) throw new SpendNotFound(spendId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<{ id: number, spend_id: number, points: number, created_at: string }>(
        sql.reversalsPage, [spendId, pageStart(page), page.limit + 1]), page.limit)
      const draws = await this.#drawsOf(tx, sql.reversalDrawsOf, items.map(row => row.id))
      return {
        items: items.map(row => ({ id: row.id, spend_id: row.spend_id, points: row.points, restored_to: draws.get(row.id)!, created_at: row.created_at })),
        next_cursor: nextCursor
      }
    }, { readOnly: true })
  }

  async listExpirations (ledgerId: number, page: PageRequest): Promise<Page<ExpirationView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<ExpirationView>(sql.expirationsPage,
        [ledgerId, pageStart(page), page.limit + 1]), page.limit)
      return { items: items.map(row => ({ ...row, expired_at: formatTimestamp(row.expired_at) })), next_cursor: nextCursor }
    }, { readOnly: true })
  }

  async listTransactions (ledgerId: number, page: PageRequest): Promise<Page<TransactionView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<{
        id: number, payer: string, points: number, ts: string, created_at: string, expires_at: string | null, remaining: number | null, expired: number | null
      }>(sql.transactionsPage, [ledgerId, pageStart(page), page.limit + 1]), page.limit)
      const draws = await this.#drawsOf(tx, sql.adjustmentDrawsOf, items.filter(row => row.points < 0).map(row => row.id))
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
    }, { readOnly: true })
  }

  async listSpends (ledgerId: number, page: PageRequest): Promise<Page<SpendView>> {
    return await this.#reads.run(async tx => {
      await this.#assertLedger(tx, ledgerId)
      const { items, next_cursor: nextCursor } = toPage(await tx.query<{ id: number, points: number, created_at: string, reversed: number }>(
        sql.spendsPage, [ledgerId, pageStart(page), page.limit + 1]), page.limit)
      const draws = await this.#drawsOf(tx, sql.spendDrawsOf, items.map(row => row.id))
      return {
        // A spend always draws from at least one lot.
        items: items.map(row => ({ id: row.id, points: row.points, created_at: row.created_at, drawn_from: draws.get(row.id)!, reversed: row.reversed })),
        next_cursor: nextCursor
      }
    }, { readOnly: true })
  }
}
