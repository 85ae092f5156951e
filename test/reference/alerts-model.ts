// The alert rules evaluated the plain way, over a user's whole event list in memory: the
// reference the SQL-backed evaluation (history slices read through indexes) must agree with.
import type { Thresholds } from '../../src/alerts/rules.js'

export interface ModelEvent { type: 'deposit' | 'withdraw', amount: number, time: number }

export function plainCodes (previous: ModelEvent[], event: ModelEvent, t: Thresholds, unitFactor: number): number[] {
  const all = [...previous, event]
  const codes: number[] = []
  const last = all.slice(-t.consecutive_withdrawals)
  if (event.type === 'withdraw' && last.length === t.consecutive_withdrawals && last.every(e => e.type === 'withdraw')) codes.push(30)
  if (event.type === 'deposit') {
    const from = event.time - t.deposit_window_seconds * unitFactor
    const total = all.filter(e => e.type === 'deposit' && e.time >= from).reduce((sum, e) => sum + e.amount, 0)
    if (total > t.deposit_window_limit) codes.push(123)
    const deposits = all.filter(e => e.type === 'deposit').slice(-t.increasing_deposits)
    if (deposits.length === t.increasing_deposits && deposits.every((e, i) => i === 0 || e.amount > deposits[i - 1]!.amount)) codes.push(300)
  }
  const from = event.time - t.velocity_window_seconds * unitFactor
  if (all.filter(e => e.time >= from).length > t.velocity_count) codes.push(500)
  if (event.type === 'withdraw' && event.amount > t.withdrawal_limit) codes.push(1100)
  return codes
}
