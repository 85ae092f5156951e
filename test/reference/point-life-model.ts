// The life of a point (issue 13) in memory: a clock, lots that expire, negative adds, spends,
// holds and reversals, and the balance at any past instant. The reference the service must agree
// with, written differently from the SQL on purpose: a lot keeps no counters, only a log of what
// happened to its points and when, and everything else (what is left, held, expired; a payer's
// balance; the balance at instant T) is a sum over those logs. It answers what the HTTP routes
// answer, status and body, so a test compares the two as they are.
//
// Instants are milliseconds since the epoch; answers carry them as the service formats them.

export type DrawOrder = 'timestamp' | 'expiry'

/** An answer: a status and its body, or a refusal's status and code. */
export type Reply = { status: 200 | 201, body: any } | { status: 400 | 404 | 409, code: string }

/** Where a lot's points went: a negative add took them, a spend, a hold, or they expired. */
type Kind = 'adjust' | 'spend' | 'hold' | 'expire'

/** `points` of the lot went to `kind` at instant `at`; negative when they came back. */
interface Entry { kind: Kind, ref: number, points: number, at: number }

interface Lot {
  id: number
  payer: string
  ts: number
  expiresAt: number | null
  points: number
  /** When the add arrived: the lot is in no balance before. */
  addedAt: number
  log: Entry[]
}

/** Points of one lot that a spend, hold or reversal moved. */
interface Piece { lot: Lot, points: number }

interface Add { id: number, payer: string, points: number, ts: number, expiresAt: number | null, createdAt: number }
interface Spend { id: number, points: number, createdAt: number, draws: Piece[], reversed: number }
interface Hold {
  id: number
  points: number
  status: 'pending' | 'captured' | 'voided' | 'expired'
  draws: Piece[]
  expiresAt: number | null
  createdAt: number
  captured?: number
  spendId?: number
}
interface Reversal { id: number, spendId: number, points: number, restoredTo: Piece[], createdAt: number }

const refuse = (status: 400 | 404 | 409, code: string): Reply => ({ status, code })
const total = (items: Array<{ points: number }>): number => items.reduce((sum, item) => sum + item.points, 0)

/** The service's form of an instant: whole seconds lose their '.000'. */
export function formatInstant (at: number): string {
  const iso = new Date(at).toISOString()
  return iso.endsWith('.000Z') ? `${iso.slice(0, 19)}Z` : iso
}

/** The points of a lot still available after everything logged up to `until`. */
function remaining (lot: Lot, until = Infinity): number {
  return lot.points - total(lot.log.filter(entry => entry.at <= until))
}

/** What `kind` holds of the lot now (for one owner, when `ref` is given). */
function taken (lot: Lot, kind: Kind, ref?: number): number {
  return total(lot.log.filter(entry => entry.kind === kind && (ref === undefined || entry.ref === ref)))
}

function expiredAt (lot: Lot, at: number): boolean {
  return lot.expiresAt !== null && lot.expiresAt <= at
}

function draw (piece: Piece): { transaction_id: number, payer: string, timestamp: string, points: number } {
  return { transaction_id: piece.lot.id, payer: piece.lot.payer, timestamp: formatInstant(piece.lot.ts), points: piece.points }
}

function byPayer (pieces: Piece[]): Array<{ payer: string, points: number }> {
  const drawn = new Map<string, number>()
  for (const { lot, points } of pieces) drawn.set(lot.payer, (drawn.get(lot.payer) ?? 0) - points)
  return [...drawn].map(([payer, points]) => ({ payer, points }))
}

/** `points` from `lots`, in the order given, each lot giving what it has left. */
function takeInOrder (lots: Lot[], points: number): Piece[] {
  const pieces: Piece[] = []
  let left = points
  for (const lot of lots) {
    if (left === 0) break
    const take = Math.min(left, remaining(lot))
    if (take > 0) pieces.push({ lot, points: take })
    left -= take
  }
  return pieces
}

const sortedKeys = <T>(entries: Array<[string, T]>): Record<string, T> =>
  Object.fromEntries(entries.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))

export class PointLifeModel {
  now: number
  readonly order: DrawOrder
  readonly lots: Lot[] = []
  readonly adds: Add[] = []
  readonly spends: Spend[] = []
  readonly holds: Hold[] = []
  readonly reversals: Reversal[] = []

  readonly #firstId: number

  /** `firstId`: where this ledger's ids start, when another ledger has taken the ones before. */
  constructor (now: number, order: DrawOrder = 'timestamp', firstId = 1) {
    this.now = now
    this.order = order
    this.#firstId = firstId
  }

  /** The clock moves forward to `at`. */
  advance (at: number): void {
    if (at < this.now) throw new Error(`the clock goes back from ${formatInstant(this.now)} to ${formatInstant(at)}`)
    this.now = at
  }

  // Settling: what fell due by now happens, in time order, hold expiries first at a tie. Every
  // operation settles first, as the service does on every read and write.

  #settle (): void {
    for (;;) {
      const hold = this.holds
        .filter(h => h.status === 'pending' && h.expiresAt !== null && h.expiresAt <= this.now)
        .sort((a, b) => a.expiresAt! - b.expiresAt! || a.id - b.id)[0]
      const lot = this.lots
        .filter(l => expiredAt(l, this.now) && remaining(l) > 0)
        .sort((a, b) => a.expiresAt! - b.expiresAt! || a.id - b.id)[0]
      if (hold !== undefined && (lot === undefined || hold.expiresAt! <= lot.expiresAt!)) {
        hold.status = 'expired'
        this.#release(hold, hold.draws, hold.expiresAt!)
      } else if (lot !== undefined) {
        lot.log.push({ kind: 'expire', ref: 0, points: remaining(lot), at: lot.expiresAt! })
      } else {
        return
      }
    }
  }

  /** Held points go back to their lots at `at`; to a lot past its expiry they expire at once. */
  #release (hold: Hold, pieces: Piece[], at: number): void {
    for (const { lot, points } of pieces) {
      lot.log.push({ kind: 'hold', ref: hold.id, points: -points, at })
      if (expiredAt(lot, at)) lot.log.push({ kind: 'expire', ref: hold.id, points, at })
    }
  }

  /** Lots with points available now: unexpired, something left. */
  #available (): Lot[] {
    return this.lots.filter(lot => !expiredAt(lot, this.now) && remaining(lot) > 0)
  }

  #byTimestamp (a: Lot, b: Lot): number {
    return a.ts - b.ts || a.id - b.id
  }

  #inDrawOrder (lots: Lot[]): Lot[] {
    if (this.order === 'timestamp') return lots.sort((a, b) => this.#byTimestamp(a, b))
    return lots.sort((a, b) => (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || this.#byTimestamp(a, b))
  }

  #nextId (rows: Array<{ id: number }>): number {
    return this.#firstId + rows.length
  }

  add (add: { payer: string, points: number, timestamp: number, expiresAt?: number }): Reply {
    this.#settle()
    const { payer, points, timestamp } = add
    const expiresAt = add.expiresAt ?? null
    if (expiresAt !== null && (points < 0 || expiresAt <= timestamp)) return refuse(400, 'INVALID_EXPIRY')
    const id = this.#nextId(this.adds)
    if (points < 0) {
      const lots = this.#available().filter(lot => lot.payer === payer).sort((a, b) => this.#byTimestamp(a, b))
      if (total(lots.map(lot => ({ points: remaining(lot) }))) < -points) return refuse(400, 'INSUFFICIENT_PAYER_POINTS')
      // Oldest first, whatever the draw order.
      for (const { lot, points: n } of takeInOrder(lots, -points)) lot.log.push({ kind: 'adjust', ref: id, points: n, at: this.now })
    } else {
      const lot: Lot = { id, payer, ts: timestamp, expiresAt, points, addedAt: this.now, log: [] }
      this.lots.push(lot)
      if (expiredAt(lot, this.now)) lot.log.push({ kind: 'expire', ref: 0, points, at: expiresAt! })
      else this.#takeOverDraws(lot)
    }
    this.adds.push({ id, payer, points, ts: timestamp, expiresAt, createdAt: this.now })
    return {
      status: 200,
      body: { id, payer, points, timestamp: formatInstant(timestamp), ...(expiresAt !== null && { expires_at: formatInstant(expiresAt) }) }
    }
  }

  /**
   * A backdated lot takes over what negative adds drew from its payer's newer lots that have not
   * expired: newest lots first, newest negative adds first, as far as it covers. The balance stays.
   */
  #takeOverDraws (backdated: Lot): void {
    const newer = this.lots
      .filter(lot => lot.payer === backdated.payer && lot.ts > backdated.ts && !expiredAt(lot, this.now))
      .sort((a, b) => this.#byTimestamp(b, a))
    let left = backdated.points
    for (const lot of newer) {
      const refs = [...new Set(lot.log.filter(entry => entry.kind === 'adjust').map(entry => entry.ref))].sort((a, b) => b - a)
      for (const ref of refs) {
        const moved = Math.min(left, taken(lot, 'adjust', ref))
        if (moved <= 0) continue
        lot.log.push({ kind: 'adjust', ref, points: -moved, at: this.now })
        backdated.log.push({ kind: 'adjust', ref, points: moved, at: this.now })
        left -= moved
      }
    }
  }

  /** Points across all payers in the draw order, or INSUFFICIENT_POINTS. */
  #draw (points: number): Piece[] | undefined {
    const lots = this.#inDrawOrder(this.#available())
    if (total(lots.map(lot => ({ points: remaining(lot) }))) < points) return undefined
    return takeInOrder(lots, points)
  }

  spend (points: number, dryRun = false): Reply {
    this.#settle()
    const pieces = this.#draw(points)
    if (pieces === undefined) return refuse(400, 'INSUFFICIENT_POINTS')
    if (!dryRun) {
      const id = this.#nextId(this.spends)
      for (const { lot, points: n } of pieces) lot.log.push({ kind: 'spend', ref: id, points: n, at: this.now })
      this.spends.push({ id, points, createdAt: this.now, draws: pieces, reversed: 0 })
    }
    return { status: 200, body: byPayer(pieces) }
  }

  placeHold (points: number, expiresAt?: number): Reply {
    this.#settle()
    if (expiresAt !== undefined && expiresAt <= this.now) return refuse(400, 'INVALID_EXPIRY')
    const pieces = this.#draw(points)
    if (pieces === undefined) return refuse(400, 'INSUFFICIENT_POINTS')
    const hold: Hold = { id: this.#nextId(this.holds), points, status: 'pending', draws: pieces, expiresAt: expiresAt ?? null, createdAt: this.now }
    for (const { lot, points: n } of pieces) lot.log.push({ kind: 'hold', ref: hold.id, points: n, at: this.now })
    this.holds.push(hold)
    return { status: 201, body: this.holdView(hold) }
  }

  #pendingHold (holdId: number): Hold | Reply {
    const hold = this.holds.find(h => h.id === holdId)
    if (hold === undefined) return refuse(404, 'HOLD_NOT_FOUND')
    if (hold.status !== 'pending') return refuse(409, 'HOLD_NOT_PENDING')
    return hold
  }

  capture (holdId: number, points?: number): Reply {
    this.#settle()
    const h = this.#pendingHold(holdId)
    if (!('draws' in h)) return h
    const n = points ?? h.points
    if (n > h.points) return refuse(400, 'CAPTURE_EXCEEDS_HOLD')
    // The captured points are the hold's first draws; the rest of each draw goes back.
    const captured: Piece[] = []
    const rest: Piece[] = []
    let left = n
    for (const { lot, points: held } of h.draws) {
      const take = Math.min(left, held)
      left -= take
      if (take > 0) captured.push({ lot, points: take })
      if (held > take) rest.push({ lot, points: held - take })
    }
    const spend: Spend = { id: this.#nextId(this.spends), points: n, createdAt: this.now, draws: captured, reversed: 0 }
    for (const { lot, points: take } of captured) {
      lot.log.push({ kind: 'hold', ref: h.id, points: -take, at: this.now })
      lot.log.push({ kind: 'spend', ref: spend.id, points: take, at: this.now })
    }
    this.#release(h, rest, this.now)
    this.spends.push(spend)
    Object.assign(h, { status: 'captured', captured: n, spendId: spend.id })
    return { status: 200, body: { ...this.holdView(h), spent: byPayer(captured) } }
  }

  void (holdId: number): Reply {
    this.#settle()
    const hold = this.#pendingHold(holdId)
    if (!('draws' in hold)) return hold
    hold.status = 'voided'
    this.#release(hold, hold.draws, this.now)
    return { status: 200, body: this.holdView(hold) }
  }

  /** Gives back the spend's newest draws first, after what earlier reversals gave back. */
  reverse (spendId: number, points?: number): Reply {
    this.#settle()
    const spend = this.spends.find(s => s.id === spendId)
    if (spend === undefined) return refuse(404, 'SPEND_NOT_FOUND')
    const left = spend.points - spend.reversed
    const n = points ?? left
    if (n === 0 || n > left) return refuse(400, 'REVERSAL_EXCEEDS_SPEND')
    const restored: Piece[] = []
    let skip = spend.reversed
    let want = n
    for (const { lot, points: drawn } of [...spend.draws].reverse()) {
      const already = Math.min(skip, drawn)
      skip -= already
      const back = Math.min(want, drawn - already)
      if (back > 0) restored.push({ lot, points: back })
      want -= back
    }
    const reversal: Reversal = { id: this.#nextId(this.reversals), spendId, points: n, restoredTo: restored, createdAt: this.now }
    for (const { lot, points: back } of restored) {
      lot.log.push({ kind: 'spend', ref: spendId, points: -back, at: this.now })
      if (expiredAt(lot, this.now)) lot.log.push({ kind: 'expire', ref: spendId, points: back, at: this.now })
    }
    spend.reversed += n
    this.reversals.push(reversal)
    return { status: 201, body: this.#reversalView(reversal) }
  }

  #reversalView (reversal: Reversal): Record<string, unknown> {
    return {
      id: reversal.id,
      spend_id: reversal.spendId,
      points: reversal.points,
      restored_to: reversal.restoredTo.map(draw),
      created_at: new Date(reversal.createdAt).toISOString()
    }
  }

  // Reads. Each settles first, like the service's.

  /** GET /balance at `at` (now by default): per payer with a lot added by then, what was left then. */
  balances (at = this.now): Record<string, number> {
    this.#settle()
    const balances = new Map<string, number>()
    for (const lot of this.lots.filter(l => l.addedAt <= at)) {
      balances.set(lot.payer, (balances.get(lot.payer) ?? 0) + remaining(lot, at))
    }
    return sortedKeys([...balances])
  }

  /** GET /balance?at=T. */
  balanceAt (at: number): Reply {
    if (at > this.now) return refuse(400, 'INVALID_TIMESTAMP')
    return { status: 200, body: this.balances(at) }
  }

  /** GET /balance/details. */
  details (): Record<string, { available: number, held: number, expiring: Array<{ expires_at: string, points: number }> }> {
    const available = this.balances()
    return sortedKeys(Object.keys(available).map(payer => {
      const lots = this.lots.filter(lot => lot.payer === payer)
      const expiring = new Map<number, number>()
      for (const lot of lots.filter(l => l.expiresAt !== null && remaining(l) > 0)) {
        expiring.set(lot.expiresAt!, (expiring.get(lot.expiresAt!) ?? 0) + remaining(lot))
      }
      return [payer, {
        available: available[payer]!,
        held: lots.reduce((sum, lot) => sum + taken(lot, 'hold'), 0),
        expiring: [...expiring].sort(([a], [b]) => a - b).slice(0, 10).map(([at, points]) => ({ expires_at: formatInstant(at), points }))
      }]
    }))
  }

  holdView (hold: Hold): Record<string, unknown> {
    return {
      id: hold.id,
      points: hold.points,
      status: hold.status,
      drawn_from: hold.draws.map(draw),
      expires_at: hold.expiresAt === null ? null : formatInstant(hold.expiresAt),
      created_at: new Date(hold.createdAt).toISOString(),
      ...(hold.status === 'captured' && { captured: hold.captured, spend_id: hold.spendId })
    }
  }

  /** GET /holds, every item, newest first. */
  holdList (): Array<Record<string, unknown>> {
    this.#settle()
    return [...this.holds].reverse().map(hold => this.holdView(hold))
  }

  /** GET /holds/:holdId. */
  hold (holdId: number): Reply {
    this.#settle()
    const hold = this.holds.find(h => h.id === holdId)
    return hold === undefined ? refuse(404, 'HOLD_NOT_FOUND') : { status: 200, body: this.holdView(hold) }
  }

  /** GET /spends/:spendId/reversals, every item, newest first. */
  reversalList (spendId: number): Reply {
    this.#settle()
    if (!this.spends.some(s => s.id === spendId)) return refuse(404, 'SPEND_NOT_FOUND')
    const items = this.reversals.filter(r => r.spendId === spendId).reverse().map(r => this.#reversalView(r))
    return { status: 200, body: { items, next_cursor: null } }
  }

  /** GET /spends, every item, newest first. */
  spendList (): Array<Record<string, unknown>> {
    this.#settle()
    return [...this.spends].reverse().map(spend => ({
      id: spend.id,
      points: spend.points,
      created_at: new Date(spend.createdAt).toISOString(),
      drawn_from: spend.draws.map(draw),
      reversed: spend.reversed
    }))
  }

  /** GET /transactions, every item, newest first. */
  transactionList (): Array<Record<string, unknown>> {
    this.#settle()
    return [...this.adds].reverse().map(add => {
      const lot = this.lots.find(l => l.id === add.id)
      const drawnFrom = lot !== undefined
        ? []
        : this.lots.filter(l => taken(l, 'adjust', add.id) !== 0)
          .sort((a, b) => this.#byTimestamp(a, b))
          .map(l => draw({ lot: l, points: taken(l, 'adjust', add.id) }))
      return {
        id: add.id,
        payer: add.payer,
        points: add.points,
        timestamp: formatInstant(add.ts),
        created_at: new Date(add.createdAt).toISOString(),
        remaining: lot === undefined ? null : remaining(lot),
        drawn_from: drawnFrom,
        expires_at: add.expiresAt === null ? null : formatInstant(add.expiresAt),
        expired: lot === undefined ? null : taken(lot, 'expire')
      }
    })
  }

  /**
   * What expired, per lot and instant, sorted by lot then instant: how the service splits it into
   * entries (one per release, per restore, per lot expiry) is its own affair.
   */
  expirations (): Array<{ transaction_id: number, payer: string, points: number, expired_at: string }> {
    this.#settle()
    const sums = new Map<string, { transaction_id: number, payer: string, points: number, expired_at: string }>()
    for (const lot of this.lots) {
      for (const entry of lot.log.filter(e => e.kind === 'expire')) {
        const key = `${lot.id} ${entry.at}`
        const sum = sums.get(key) ?? { transaction_id: lot.id, payer: lot.payer, points: 0, expired_at: formatInstant(entry.at) }
        sum.points += entry.points
        sums.set(key, sum)
      }
    }
    // By instant, not by text: '…00.001Z' sorts before '…00Z'.
    return [...sums.values()].sort((a, b) => a.transaction_id - b.transaction_id || Date.parse(a.expired_at) - Date.parse(b.expired_at))
  }

  /**
   * Every instant at which something happened or fell due, up to now: where a balance at a past
   * instant is most likely to be wrong.
   */
  instants (): number[] {
    const instants = new Set<number>()
    for (const lot of this.lots) {
      instants.add(lot.addedAt)
      if (lot.expiresAt !== null) instants.add(lot.expiresAt)
      for (const entry of lot.log) instants.add(entry.at)
    }
    for (const hold of this.holds) if (hold.expiresAt !== null) instants.add(hold.expiresAt)
    return [...instants].filter(at => at <= this.now).sort((a, b) => a - b)
  }

  /**
   * The model's own invariants: every lot's points are accounted for exactly once, nothing past
   * its expiry is available, and pending holds hold what they drew. [] when all hold.
   */
  problems (): string[] {
    this.#settle()
    const problems: string[] = []
    for (const lot of this.lots) {
      const parts = { remaining: remaining(lot), adjusted: taken(lot, 'adjust'), held: taken(lot, 'hold'), expired: taken(lot, 'expire'), spent: taken(lot, 'spend') }
      if (Object.values(parts).some(n => n < 0)) problems.push(`lot ${lot.id} below zero: ${JSON.stringify(parts)}`)
      if (expiredAt(lot, this.now) && parts.remaining > 0) problems.push(`lot ${lot.id} past expiry with ${parts.remaining} available`)
      const pending = this.holds.filter(h => h.status === 'pending').flatMap(h => h.draws).filter(p => p.lot === lot)
      if (parts.held !== total(pending)) problems.push(`lot ${lot.id} holds ${parts.held}, pending holds ${total(pending)}`)
      const spent = this.spends.flatMap(s => s.draws).filter(p => p.lot === lot)
      const restored = this.reversals.flatMap(r => r.restoredTo).filter(p => p.lot === lot)
      if (parts.spent !== total(spent) - total(restored)) problems.push(`lot ${lot.id} spent ${parts.spent} disagrees with its spends and reversals`)
    }
    for (const spend of this.spends) {
      if (spend.reversed > spend.points) problems.push(`spend ${spend.id} reversed ${spend.reversed} of ${spend.points}`)
    }
    return problems
  }
}
