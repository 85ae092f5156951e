import { BalanceTooLarge, InsufficientPayerPoints } from '../errors.js'

// The rules of a points ledger, written once for both engines: they take rows and answer a
// decision. The stores read the rows, call these, and write what they answer.

const MAX = Number.MAX_SAFE_INTEGER

export interface NewAdd {
  payer: string
  points: number
  /** Stored form, from parseTimestamp. */
  ts: string
  /** Stored form; later than ts, positive adds only (the route checks). */
  expiresAt?: string
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
  return drawLots(lots, points).map(({ lot, points }) => ({ lotId: lot.transaction_id, payer: lot.payer, points }))
}

/** drawOldestFirst, answering each lot as it was read (with whatever else the store read). */
export function drawLots<L extends Lot> (lots: Iterable<L>, points: number): Array<{ lot: L, points: number }> {
  const takes: Array<{ lot: L, points: number }> = []
  let left = points
  for (const lot of lots) {
    const take = Math.min(lot.remaining, left)
    takes.push({ lot, points: take })
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
 * A payer's or a ledger's points: available (`balance`) and held by pending holds. Held points
 * come back to the balance when a hold is voided or expires, so the bound of 2^53−1 is on the sum.
 */
export interface Holding {
  balance: number
  held: number
}

/** A payer or a ledger with no row yet. */
export const NO_POINTS: Readonly<Holding> = Object.freeze({ balance: 0, held: 0 })

const tooLarge = (holding: Holding, points: number): boolean => holding.balance + holding.held + points > MAX

/**
 * The rules of an add, given its payer's points and its ledger's before it: a positive add may
 * not take either past 2^53−1, held points included; a negative add may not take more than the
 * payer has available. `ledger` is a function because only a positive add needs it.
 */
export function checkAdd (add: NewAdd, payer: Holding, ledger: () => Holding): void {
  if (add.points > 0) {
    if (tooLarge(payer, add.points)) throw new BalanceTooLarge(`payer ${add.payer}`)
    if (tooLarge(ledger(), add.points)) throw new BalanceTooLarge('the ledger')
  } else if (payer.balance < -add.points) {
    throw new InsufficientPayerPoints(add.payer, payer.balance, -add.points)
  }
}

/**
 * The rule of a reversal, given the changes it makes and the points before it of each payer it
 * gives back to and of its ledger: like an add, it may not take either past 2^53−1.
 */
export function checkRestore (changes: LedgerChanges, payers: Map<string, Holding>, ledger: Holding): void {
  for (const [payer, points] of changes.payerMoves()) {
    if (tooLarge(payers.get(payer)!, points)) throw new BalanceTooLarge(`payer ${payer}`)
  }
  if (tooLarge(ledger, changes.total())) throw new BalanceTooLarge('the ledger')
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

// ---- The life of a point: expiry, holds, reversals (issue 13) ----

/** Which lots a spend or a hold draws first (POINTS_DRAW_ORDER). */
export type DrawOrder = 'timestamp' | 'expiry'

/** A lot as the changes below see it. `expiresAt` null: it never expires. */
export interface LotRef {
  lotId: number
  payer: string
  expiresAt: string | null
}

/** How one lot's columns move: points go between remaining, held, expired and spent. */
export interface LotDelta {
  remaining: number
  held: number
  expired: number
  restored: number
}

/** Points that expired; `holdId`/`reversalId`: they came back to a lot already past its expiry. */
export interface Expiration {
  lotId: number
  payer: string
  points: number
  expiredAt: string
  holdId: number | null
  reversalId: number | null
}

/** A history row: the payer's available balance after the changes at `at`. */
export interface HistoryRow {
  payer: string
  at: string
  balance: number
}

/** Whether a lot is past its expiry at `at` (stored times sort as text). */
export const isExpired = (lot: { expiresAt: string | null }, at: string): boolean => lot.expiresAt !== null && lot.expiresAt <= at

/**
 * What one write does to a ledger's lots and payers, gathered by the rules below and then written
 * by a store in one go. Available-balance moves are kept in the order they take effect, so each
 * payer's history rows follow time.
 */
export class LedgerChanges {
  readonly lots = new Map<number, LotDelta>()
  readonly expirations: Expiration[] = []
  /** Available points per payer, in the order they moved. */
  readonly moves: Array<{ at: string, payer: string, points: number }> = []
  /** Held points per payer. */
  readonly held = new Map<string, number>()

  #lot (lotId: number): LotDelta {
    let delta = this.lots.get(lotId)
    if (delta === undefined) {
      delta = { remaining: 0, held: 0, expired: 0, restored: 0 }
      this.lots.set(lotId, delta)
    }
    return delta
  }

  #move (at: string, payer: string, points: number): void {
    this.moves.push({ at, payer, points })
  }

  #hold (payer: string, points: number): void {
    this.held.set(payer, (this.held.get(payer) ?? 0) + points)
  }

  /** A hold takes available points of a lot. */
  hold (lot: LotRef, points: number, at: string): void {
    const delta = this.#lot(lot.lotId)
    delta.remaining -= points
    delta.held += points
    this.#hold(lot.payer, points)
    this.#move(at, lot.payer, -points)
  }

  /** A capture turns held points into spent ones: no balance moves, they had left it already. */
  capture (lot: LotRef, points: number): void {
    this.#lot(lot.lotId).held -= points
    this.#hold(lot.payer, -points)
  }

  /**
   * Held points go back to their lot (a void, a capture's rest, a hold's expiry) at `at`: they
   * are available again, or expire at once if the lot is past its expiry by then.
   */
  release (lot: LotRef, points: number, at: string, holdId: number): void {
    const delta = this.#lot(lot.lotId)
    delta.held -= points
    this.#hold(lot.payer, -points)
    this.#comeBack(lot, delta, points, at, holdId, null)
  }

  /** A reversal gives spent points back to their lot at `at` (expired lot: they expire at once). */
  restore (lot: LotRef, points: number, at: string, reversalId: number): void {
    const delta = this.#lot(lot.lotId)
    delta.restored += points
    this.#comeBack(lot, delta, points, at, null, reversalId)
  }

  #comeBack (lot: LotRef, delta: LotDelta, points: number, at: string, holdId: number | null, reversalId: number | null): void {
    if (isExpired(lot, at)) {
      delta.expired += points
      this.expirations.push({ lotId: lot.lotId, payer: lot.payer, points, expiredAt: at, holdId, reversalId })
    } else {
      delta.remaining += points
      this.#move(at, lot.payer, points)
    }
  }

  /** A lot reaches its expiry: its available points expire, dated then. */
  expire (lot: LotRef, points: number): void {
    const delta = this.#lot(lot.lotId)
    delta.remaining -= points
    delta.expired += points
    this.expirations.push({ lotId: lot.lotId, payer: lot.payer, points, expiredAt: lot.expiresAt!, holdId: null, reversalId: null })
    this.#move(lot.expiresAt!, lot.payer, -points)
  }

  /** How far each payer's available balance moves in all. */
  payerMoves (): Map<string, number> {
    const sums = new Map<string, number>()
    for (const move of this.moves) sums.set(move.payer, (sums.get(move.payer) ?? 0) + move.points)
    return sums
  }

  /** The payers whose available or held points move. */
  payers (): string[] {
    return [...new Set([...this.moves.map(move => move.payer), ...this.held.keys()])]
  }

  /** How far the ledger's total (the sum of available balances) moves. */
  total (): number {
    return this.moves.reduce((sum, move) => sum + move.points, 0)
  }

  /** How far the ledger's held points (the sum of its payers') move. */
  totalHeld (): number {
    let sum = 0
    for (const points of this.held.values()) sum += points
    return sum
  }

  /**
   * The history rows the moves make, from each payer's balance before them: one per payer and
   * instant, its balance after everything at that instant.
   */
  history (before: Map<string, number>): HistoryRow[] {
    const balances = new Map(before)
    const rows: HistoryRow[] = []
    const last = new Map<string, HistoryRow>()
    for (const move of this.moves) {
      // Every payer that moves has lots, so a balance row: the stores pass it in `before`.
      const balance = balances.get(move.payer)! + move.points
      balances.set(move.payer, balance)
      const row = last.get(move.payer)
      if (row !== undefined && row.at === move.at) row.balance = balance
      else {
        const next = { payer: move.payer, at: move.at, balance }
        rows.push(next)
        last.set(move.payer, next)
      }
    }
    return rows
  }
}

/** A lot past its expiry with available points, as settling reads it. */
export interface DueLot extends LotRef {
  expiresAt: string
  remaining: number
}

/** One lot a hold drew from, and how much. */
export interface HeldDraw extends LotRef {
  points: number
}

/** A pending hold past its expiry, with its draws in order. */
export interface DueHold {
  holdId: number
  expiresAt: string
  draws: HeldDraw[]
}

/**
 * Settles what came due in a ledger by `now`: each due hold expires at its expires_at, giving
 * its points back to their lots, and each lot past its expiry loses its available points, dated
 * at its expires_at. In time order, a hold's expiry before a lot's at the same instant; points a
 * hold gives back to a lot before the lot's expiry expire with it, after it at once. `lots` are
 * the lots with available points past expiry; a lot that only gets points back from a hold had
 * none available. Answers the holds that expired, with when.
 */
export function settle (lots: DueLot[], holds: DueHold[], now: string, changes: LedgerChanges): Array<{ holdId: number, at: string }> {
  const available = new Map<number, number>(lots.map(lot => [lot.lotId, lot.remaining]))
  const lotEvents = new Map<number, LotRef & { expiresAt: string }>(lots.map(lot => [lot.lotId, lot]))
  for (const hold of holds) {
    for (const draw of hold.draws) {
      if (draw.expiresAt !== null && draw.expiresAt <= now && !lotEvents.has(draw.lotId)) {
        lotEvents.set(draw.lotId, { lotId: draw.lotId, payer: draw.payer, expiresAt: draw.expiresAt })
      }
    }
  }
  type Event = { at: string, hold: DueHold } | { at: string, lot: LotRef & { expiresAt: string } }
  const events: Event[] = [
    ...holds.map(hold => ({ at: hold.expiresAt, hold })),
    ...[...lotEvents.values()].map(lot => ({ at: lot.expiresAt, lot }))
  ]
  // Stable: holds (listed first) before lots at the same instant; each list in its own order.
  events.sort((a, b) => a.at < b.at ? -1 : a.at > b.at ? 1 : 0)
  const expired: Array<{ holdId: number, at: string }> = []
  for (const event of events) {
    if ('hold' in event) {
      for (const draw of event.hold.draws) {
        changes.release(draw, draw.points, event.at, event.hold.holdId)
        if (!isExpired(draw, event.at)) available.set(draw.lotId, (available.get(draw.lotId) ?? 0) + draw.points)
      }
      expired.push({ holdId: event.hold.holdId, at: event.at })
    } else {
      const points = available.get(event.lot.lotId) ?? 0
      if (points > 0) changes.expire(event.lot, points)
      available.set(event.lot.lotId, 0)
    }
  }
  return expired
}

/** Splits a hold's draws, in order, into the first `points` (captured) and the rest (released). */
export function splitHold (draws: HeldDraw[], points: number): { captured: HeldDraw[], released: HeldDraw[] } {
  const captured: HeldDraw[] = []
  const released: HeldDraw[] = []
  let left = points
  for (const draw of draws) {
    const take = Math.min(left, draw.points)
    if (take > 0) captured.push({ ...draw, points: take })
    if (draw.points > take) released.push({ ...draw, points: draw.points - take })
    left -= take
  }
  return { captured, released }
}

/**
 * What a reversal of `points` gives back: the spend's draws (given in drawing order) from the
 * last one back, after the `reversed` points earlier reversals already gave back from the end.
 */
export function restoreNewestFirst<D extends { points: number }> (draws: D[], reversed: number, points: number): D[] {
  const restored: D[] = []
  let skip = reversed
  let left = points
  for (let i = draws.length - 1; i >= 0 && left > 0; i--) {
    const draw = draws[i]!
    const skipped = Math.min(skip, draw.points)
    skip -= skipped
    const take = Math.min(left, draw.points - skipped)
    if (take > 0) restored.push({ ...draw, points: take })
    left -= take
  }
  return restored
}
