import { BalanceTooLarge, InsufficientPayerPoints } from '../errors.js'

// The rules of a points ledger, written once for both engines: they take rows and answer a
// decision. The stores read the rows, call these, and write what they answer.

const MAX = Number.MAX_SAFE_INTEGER

export interface NewAdd {
  payer: string
  points: number
  /** Stored form, from parseTimestamp. */
  ts: string
}

/** A lot with points left, as the stores read them: in drawing order. */
export interface Lot {
  transaction_id: number
  payer: string
  remaining: number
}

/** Points taken from one lot. */
export interface Take {
  lotId: number
  payer: string
  points: number
}

/**
 * Takes `points` from `lots`, given in drawing order (oldest timestamp first, then arrival),
 * and stops reading once they are covered: a store passing a cursor reads no further lot. The
 * caller has checked the lots hold enough (the payer's balance, or the ledger's total).
 */
export function drawOldestFirst (lots: Iterable<Lot>, points: number): Take[] {
  const takes: Take[] = []
  let left = points
  for (const lot of lots) {
    const take = Math.min(lot.remaining, left)
    takes.push({ lotId: lot.transaction_id, payer: lot.payer, points: take })
    left -= take
    if (left === 0) break
  }
  return takes
}

/** A spend's answer: one entry per payer, in the order of each payer's first take, negative. */
export function byPayer (takes: Take[]): Array<{ payer: string, points: number }> {
  const drawn = new Map<string, number>()
  for (const take of takes) drawn.set(take.payer, (drawn.get(take.payer) ?? 0) + take.points)
  return [...drawn].map(([payer, points]) => ({ payer, points: -points }))
}

/**
 * The rules of an add, given its payer's balance and its ledger's total before it: a positive add
 * may not take either past 2^53−1; a negative add may not take more than the payer has.
 * `total` is a function because only a positive add needs it.
 */
export function checkAdd (add: NewAdd, balance: number, total: () => number): void {
  if (add.points > 0) {
    if (balance + add.points > MAX) throw new BalanceTooLarge(`payer ${add.payer}`)
    if (total() + add.points > MAX) throw new BalanceTooLarge('the ledger')
  } else if (balance < -add.points) {
    throw new InsufficientPayerPoints(add.payer, balance, -add.points)
  }
}

/** What one negative add has drawn from one newer lot, newest lots first, newest adds first. */
export interface AdjustmentShare {
  lotId: number
  adjustmentId: number
  points: number
}

/** A draw moved from a newer lot onto the backdated add's lot. */
export interface Move {
  fromLotId: number
  adjustmentId: number
  points: number
}

/**
 * A backdated add of `capacity` points: negative adds that drew from the payer's newer lots now
 * draw from it instead, newest draws first, as far as it covers. Stops reading `shares` once
 * the capacity is used. Balances do not change; which lots hold them does.
 */
export function takeOverDraws (shares: Iterable<AdjustmentShare>, capacity: number): Move[] {
  const moves: Move[] = []
  let left = capacity
  for (const share of shares) {
    const moved = Math.min(left, share.points)
    moves.push({ fromLotId: share.lotId, adjustmentId: share.adjustmentId, points: moved })
    left -= moved
    if (left === 0) break
  }
  return moves
}
