import { formatCents } from '../money.js'

// The alert rules: pure functions of the event, the slice of the user's history they need,
// and the user's thresholds. No SQL here; the repository fetches the slice, these decide.

export type EventType = 'deposit' | 'withdraw'

export interface Thresholds {
  /** 1100: a withdrawal above this many cents. */
  withdrawal_limit: number
  /** 30: this many withdrawals in a row, this one included. */
  consecutive_withdrawals: number
  /** 300: this many deposits in strictly increasing order, this one included. */
  increasing_deposits: number
  /** 123: deposits within this many seconds back... */
  deposit_window_seconds: number
  /** ...totalling more than this many cents. */
  deposit_window_limit: number
  /** 500: events within this many seconds back... */
  velocity_window_seconds: number
  /** ...more than this many of them. */
  velocity_count: number
}

export type Risk = 'low' | 'medium' | 'high'

/** The tiers: `high` risk alerts soonest. Medium is the defaults. */
export const tiers: Record<Risk, Thresholds> = {
  low: {
    withdrawal_limit: 50_000,
    consecutive_withdrawals: 5,
    increasing_deposits: 5,
    deposit_window_seconds: 30,
    deposit_window_limit: 100_000,
    velocity_window_seconds: 60,
    velocity_count: 10
  },
  medium: {
    withdrawal_limit: 10_000,
    consecutive_withdrawals: 3,
    increasing_deposits: 3,
    deposit_window_seconds: 30,
    deposit_window_limit: 20_000,
    velocity_window_seconds: 60,
    velocity_count: 5
  },
  high: {
    withdrawal_limit: 5_000,
    consecutive_withdrawals: 2,
    increasing_deposits: 2,
    deposit_window_seconds: 60,
    deposit_window_limit: 10_000,
    velocity_window_seconds: 60,
    velocity_count: 3
  }
}

export interface IncomingEvent {
  type: EventType
  /** Cents. */
  amount: number
  /** In the configured unit (seconds or milliseconds). */
  time: number
}

/** What the rules need to know of the user's earlier events, the incoming one not included. */
export interface HistorySlice {
  /** Types of the latest consecutive_withdrawals − 1 events, newest first. */
  previousTypes: EventType[]
  /** Amounts of the latest increasing_deposits − 1 deposits, newest first. */
  previousDeposits: number[]
  /** Deposits with time in [time − deposit window, time]; the total in cents, exact past 2^53. */
  depositWindow: { total: bigint, count: number }
  /** Events of either type with time in [time − velocity window, time]. */
  velocityWindowCount: number
}

/** The figures that fired an alert, so a reviewer sees why without recomputing. */
export type AlertDetails = Record<string, string | number | string[]>

export interface FiredAlert {
  code: number
  details: AlertDetails
}

/** Seconds of a window in the event time unit. */
export function windowLength (seconds: number, unit: 's' | 'ms'): number {
  return unit === 'ms' ? seconds * 1000 : seconds
}

/** Every code the event fires, ascending, each with its figures. */
export function evaluate (event: IncomingEvent, history: HistorySlice, t: Thresholds, unit: 's' | 'ms'): FiredAlert[] {
  const fired: FiredAlert[] = []

  if (event.type === 'withdraw') {
    const types = [event.type, ...history.previousTypes]
    if (types.length >= t.consecutive_withdrawals && types.slice(0, t.consecutive_withdrawals).every(type => type === 'withdraw')) {
      fired.push({ code: 30, details: { consecutive_withdrawals: t.consecutive_withdrawals, threshold: t.consecutive_withdrawals } })
    }
  }

  if (event.type === 'deposit') {
    const window = windowLength(t.deposit_window_seconds, unit)
    const total = history.depositWindow.total + BigInt(event.amount)
    if (total > BigInt(t.deposit_window_limit)) {
      fired.push({
        code: 123,
        details: {
          window_start: Math.max(0, event.time - window),
          window_end: event.time,
          deposits: history.depositWindow.count + 1,
          total: formatCents(total),
          limit: formatCents(t.deposit_window_limit)
        }
      })
    }
    // Oldest first: each must be strictly larger than the one before.
    const amounts = [event.amount, ...history.previousDeposits].slice(0, t.increasing_deposits).reverse()
    if (amounts.length === t.increasing_deposits && amounts.every((a, i) => i === 0 || a > amounts[i - 1]!)) {
      fired.push({ code: 300, details: { deposits: amounts.map(formatCents), threshold: t.increasing_deposits } })
    }
  }

  const velocityWindow = windowLength(t.velocity_window_seconds, unit)
  const events = history.velocityWindowCount + 1
  if (events > t.velocity_count) {
    fired.push({
      code: 500,
      details: { window_start: Math.max(0, event.time - velocityWindow), window_end: event.time, events, limit: t.velocity_count }
    })
  }

  if (event.type === 'withdraw' && event.amount > t.withdrawal_limit) {
    fired.push({ code: 1100, details: { amount: formatCents(event.amount), limit: formatCents(t.withdrawal_limit) } })
  }
  return fired.sort((a, b) => a.code - b.code)
}
