// A tiny in-memory reference for the points ledger, written differently from the SQL on
// purpose: it stores only what spends took from each lot and the total each payer's negative
// adds took, and derives every lot's remaining by laying that total over the payer's lots
// oldest first. The service must agree with it on every answer.

interface Lot { id: number, payer: string, ts: string, points: number, spent: number }

export type Outcome<T> = { ok: true, value: T } | { ok: false, code: string }

export class PointsModel {
  lots: Lot[] = []
  taken = new Map<string, number>()
  payers = new Set<string>()
  nextId = 1

  #ordered (lots: Lot[]): Lot[] {
    return [...lots].sort((a, b) => a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id - b.id)
  }

  remaining (): Map<number, number> {
    const remaining = new Map<number, number>()
    for (const payer of this.payers) {
      let negative = this.taken.get(payer) ?? 0
      for (const lot of this.#ordered(this.lots.filter(l => l.payer === payer))) {
        const take = Math.min(lot.points - lot.spent, negative)
        negative -= take
        remaining.set(lot.id, lot.points - lot.spent - take)
      }
    }
    return remaining
  }

  balances (): Record<string, number> {
    const remaining = this.remaining()
    const balances: Record<string, number> = {}
    for (const payer of this.payers) balances[payer] = 0
    for (const lot of this.lots) balances[lot.payer]! += remaining.get(lot.id)!
    return balances
  }

  add (payer: string, points: number, ts: string): Outcome<number> {
    if (points < 0) {
      if ((this.balances()[payer] ?? 0) < -points) return { ok: false, code: 'INSUFFICIENT_PAYER_POINTS' }
      this.taken.set(payer, (this.taken.get(payer) ?? 0) - points)
    } else {
      this.lots.push({ id: this.nextId, payer, ts, points, spent: 0 })
    }
    this.payers.add(payer)
    return { ok: true, value: this.nextId++ }
  }

  spend (points: number, dryRun: boolean): Outcome<Array<{ payer: string, points: number }>> {
    const remaining = this.remaining()
    const total = [...remaining.values()].reduce((a, b) => a + b, 0)
    if (total < points) return { ok: false, code: 'INSUFFICIENT_POINTS' }
    const result: Array<{ payer: string, points: number }> = []
    let left = points
    for (const lot of this.#ordered(this.lots)) {
      const take = Math.min(remaining.get(lot.id)!, left)
      if (take === 0) continue
      if (!dryRun) lot.spent += take
      const entry = result.find(r => r.payer === lot.payer)
      if (entry) entry.points -= take
      else result.push({ payer: lot.payer, points: -take })
      left -= take
      if (left === 0) break
    }
    return { ok: true, value: result }
  }
}
