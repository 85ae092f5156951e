import type { Draw, HoldStatus, HoldView } from './store.js'
import { formatTimestamp } from './timestamp.js'

/** A draw as both stores read it: the spend or negative add it belongs to, and the lot drawn. */
export interface DrawRow { owner_id: number, transaction_id: number, payer: string, ts: string, points: number }

function draw (row: DrawRow): Draw {
  return { transaction_id: row.transaction_id, payer: row.payer, timestamp: formatTimestamp(row.ts), points: row.points }
}

/** The rows of several owners' draws, in order, grouped by owner for a page of history. */
export function groupDraws (rows: DrawRow[]): Map<number, Draw[]> {
  const byOwner = new Map<number, Draw[]>()
  for (const row of rows) {
    const list = byOwner.get(row.owner_id) ?? []
    list.push(draw(row))
    byOwner.set(row.owner_id, list)
  }
  return byOwner
}

/** A lot drawn from, as the stores read it for a hold, a spend or a reversal. */
export interface LotDrawRow { lotId: number, payer: string, ts: string, points: number }

export function lotDraw (row: LotDrawRow): Draw {
  return { transaction_id: row.lotId, payer: row.payer, timestamp: formatTimestamp(row.ts), points: row.points }
}

/** A hold's row, as both stores read it. */
export interface HoldRow {
  id: number
  points: number
  status: HoldStatus
  expires_at: string | null
  created_at: string
  captured: number | null
  spend_id: number | null
}

/** A hold's answer: `captured` and `spend_id` only once it is captured. */
export function holdView (hold: HoldRow, draws: Array<LotDrawRow | Draw>): HoldView {
  const view: HoldView = {
    id: hold.id,
    points: hold.points,
    status: hold.status,
    drawn_from: draws.map(d => 'lotId' in d ? lotDraw(d) : d),
    expires_at: hold.expires_at === null ? null : formatTimestamp(hold.expires_at),
    created_at: hold.created_at
  }
  if (hold.status === 'captured') {
    view.captured = hold.captured!
    view.spend_id = hold.spend_id!
  }
  return view
}
