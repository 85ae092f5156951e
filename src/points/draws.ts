import type { Draw } from './store.js'
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
