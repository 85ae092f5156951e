import type { Statement } from 'better-sqlite3'
import type { Db } from '../storage/sqlite/open.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import { sqliteWork, type SqliteWork } from '../storage/work.js'
import { EventOutOfOrder } from '../errors.js'
import { formatCents } from '../money.js'
import { type AlertDetails, type EventType, type FiredAlert, type IncomingEvent, type Risk, type Thresholds, evaluate, windowLength } from './rules.js'
import { effectiveProfile, type AlertProfile, type AlertsStore, type StoredAlert, type StoredEvent } from './store.js'

export const alertsSql = {
  // The newest events (the first one's time is the user's last) and deposits. The repository
  // writes the limit into the statement, one prepared per limit: a bound LIMIT made these two
  // reads take twice as long (5.6 µs against 2.8, measured on 40 000 events).
  latestEvents:
    'SELECT time, type FROM events WHERE user_id = @userId ORDER BY time DESC, id DESC LIMIT @limit',
  latestDeposits:
    "SELECT amount FROM events WHERE user_id = @userId AND type = 'deposit' ORDER BY time DESC, id DESC LIMIT @limit",
  // The window's total, summed in three 17-bit slices of the amount (amounts are below 2^50 by
  // the API's largest, 9999999999999.99) and put together in BigInt: a plain sum(amount) passes
  // int64 at 9,224 deposits of that amount (SQLite raises "integer overflow"), and 2^53 cents far
  // sooner. A slice's sum passes int64 only past 2^46 rows, more than a SQLite file can hold.
  depositWindow:
    'SELECT coalesce(sum(amount >> 34), 0) AS high, coalesce(sum((amount >> 17) & 131071), 0) AS middle, ' +
    "coalesce(sum(amount & 131071), 0) AS low, count(*) AS count FROM events WHERE user_id = @userId AND type = 'deposit' AND time >= @from",
  velocityWindow: 'SELECT count(*) FROM events WHERE user_id = @userId AND time >= @from',
  insertEvent:
    'INSERT INTO events (user_id, type, amount, time, created_at) VALUES (@userId, @type, @amount, @time, @now)',
  insertAlert:
    'INSERT INTO alerts (event_id, user_id, code, details, created_at) VALUES (@eventId, @userId, @code, @details, @now)',
  profile: 'SELECT risk, overrides FROM alert_profiles WHERE user_id = @userId',
  upsertProfile:
    'INSERT INTO alert_profiles (user_id, risk, overrides, updated_at) VALUES (@userId, @risk, @overrides, @now) ' +
    'ON CONFLICT (user_id) DO UPDATE SET risk = excluded.risk, overrides = excluded.overrides, updated_at = excluded.updated_at',
  // Pages by id, walking events_user_time: per user, (time, id) order is id order. Bounding time
  // by the cursor event's own time lets the walk start at the cursor; `id < @before` keeps the
  // answer exact for any cursor (one from another user only makes the walk longer).
  eventsPage:
    'SELECT e.id, e.type, e.amount, e.time, e.created_at, ' +
    '(SELECT json_group_array(code) FROM (SELECT code FROM alerts WHERE event_id = e.id ORDER BY code)) AS alert_codes ' +
    'FROM events AS e WHERE e.user_id = @userId AND e.time <= coalesce((SELECT time FROM events WHERE id = @before AND ' +
    'user_id = @userId), 9223372036854775807) AND e.id < @before ORDER BY e.time DESC, e.id DESC LIMIT @limit',
  // One statement per filter, so each walks the index made for it rather than every alert.
  alertsPage: 'SELECT id, event_id, user_id, code, details, created_at FROM alerts WHERE id < @before ORDER BY id DESC LIMIT @limit',
  alertsOfUser:
    'SELECT id, event_id, user_id, code, details, created_at FROM alerts ' +
    'WHERE user_id = @userId AND id < @before ORDER BY id DESC LIMIT @limit',
  alertsWithCode:
    'SELECT id, event_id, user_id, code, details, created_at FROM alerts ' +
    'WHERE code = @code AND id < @before ORDER BY id DESC LIMIT @limit',
  // The unary + keeps alerts_code (every user's alerts of that code) out of it: this walks the
  // user's own entries of alerts_user and checks the code in the index.
  alertsOfUserWithCode:
    'SELECT id, event_id, user_id, code, details, created_at FROM alerts ' +
    'WHERE user_id = @userId AND +code = @code AND id < @before ORDER BY id DESC LIMIT @limit'
}

type Limited = 'latestEvents' | 'latestDeposits'
const limited = new Set<string>(['latestEvents', 'latestDeposits'] satisfies Limited[])

/**
 * Events and alerts on SQLite. Storing the event, evaluating the rules and storing the alerts is
 * one Work; the rules see only the slice of history they need, read through indexes.
 */
export class SqliteAlerts implements AlertsStore {
  readonly #db: Db
  readonly #now: () => Date
  readonly #unit: 's' | 'ms'
  readonly #statements: { [K in Exclude<keyof typeof alertsSql, Limited>]: Statement }
  readonly #withLimit = new Map<string, Statement>()

  constructor (db: Db, now: () => Date, unit: 's' | 'ms') {
    this.#db = db
    this.#now = now
    this.#unit = unit
    // The limited reads are prepared per limit, by #limited; velocityWindow answers one value.
    this.#statements = Object.fromEntries(
      Object.entries(alertsSql).filter(([name]) => !limited.has(name))
        .map(([name, sql]) => [name, name === 'velocityWindow' ? db.prepare(sql).pluck() : db.prepare(sql)])
    ) as { [K in Exclude<keyof typeof alertsSql, Limited>]: Statement }
    // Its sums come back as BigInt, exact past 2^53.
    this.#statements.depositWindow.safeIntegers()
  }

  #profile (userId: number): AlertProfile {
    return effectiveProfile(userId, this.#statements.profile.get({ userId }) as { risk: Risk, overrides: string } | undefined)
  }

  async profile (userId: number): Promise<AlertProfile> {
    return this.#profile(userId)
  }

  setProfile (userId: number, risk: Risk, overrides: Partial<Thresholds>): SqliteWork<AlertProfile> {
    return sqliteWork(() => {
      this.#statements.upsertProfile.run({ userId, risk, overrides: JSON.stringify(overrides), now: this.#now().toISOString() })
      return this.#profile(userId)
    })
  }

  /** alertsSql[name] with its LIMIT written in; prepared the first time each limit is used. */
  #limited (name: Limited, limit: number): Statement {
    const key = `${name} ${limit}`
    let statement = this.#withLimit.get(key)
    if (statement === undefined) {
      // An integer by the thresholds' schema (2 to 1000); Math.trunc keeps the SQL a number regardless.
      statement = this.#db.prepare(alertsSql[name].replace('@limit', String(Math.trunc(limit))))
      if (name === 'latestDeposits') statement.pluck()
      this.#withLimit.set(key, statement)
    }
    return statement
  }

  record (userId: number, event: IncomingEvent): SqliteWork<FiredAlert[]> {
    return sqliteWork(() => this.#record(userId, event))
  }

  #record (userId: number, event: IncomingEvent): FiredAlert[] {
    const s = this.#statements
    const t = this.#profile(userId).thresholds
    // consecutive_withdrawals is at least 2, so this reads the newest event whenever there is one.
    const latest = this.#limited('latestEvents', t.consecutive_withdrawals - 1).all({ userId }) as Array<{ time: number, type: EventType }>
    const last = latest[0]?.time
    if (last !== undefined && event.time < last) throw new EventOutOfOrder(event.time, last)
    const fired = evaluate(event, {
      previousTypes: latest.map(row => row.type),
      previousDeposits: this.#limited('latestDeposits', t.increasing_deposits - 1).all({ userId }) as number[],
      depositWindow: this.#depositWindow(userId, event.time - windowLength(t.deposit_window_seconds, this.#unit)),
      velocityWindowCount: s.velocityWindow.get({ userId, from: event.time - windowLength(t.velocity_window_seconds, this.#unit) }) as number
    }, t, this.#unit)
    const now = this.#now().toISOString()
    const eventId = s.insertEvent.run({ userId, ...event, now }).lastInsertRowid
    for (const alert of fired) {
      s.insertAlert.run({ eventId, userId, code: alert.code, details: JSON.stringify(alert.details), now })
    }
    return fired
  }

  /** The user's deposits with time ≥ from: how many, and their exact total in cents. */
  #depositWindow (userId: number, from: number): { total: bigint, count: number } {
    const { high, middle, low, count } = this.#statements.depositWindow.get({ userId, from }) as Record<'high' | 'middle' | 'low' | 'count', bigint>
    return { total: (high << 34n) + (middle << 17n) + low, count: Number(count) }
  }

  async events (userId: number, page: PageRequest): Promise<Page<StoredEvent>> {
    const rows = this.#statements.eventsPage.all({ userId, before: pageStart(page), limit: page.limit + 1 }) as Array<{
      id: number, type: EventType, amount: number, time: number, created_at: string, alert_codes: string
    }>
    return toPage(rows.map(row => ({ ...row, amount: formatCents(row.amount), alert_codes: JSON.parse(row.alert_codes) as number[] })), page.limit)
  }

  async alerts (filter: { userId?: number | undefined, code?: number | undefined }, page: PageRequest): Promise<Page<StoredAlert>> {
    const { userId, code } = filter
    const s = this.#statements
    const statement = userId === undefined
      ? (code === undefined ? s.alertsPage : s.alertsWithCode)
      : (code === undefined ? s.alertsOfUser : s.alertsOfUserWithCode)
    const rows = statement.all({ userId, code, before: pageStart(page), limit: page.limit + 1 }) as Array<Omit<StoredAlert, 'details'> & { details: string }>
    return toPage(rows.map(row => ({ ...row, details: JSON.parse(row.details) as AlertDetails })), page.limit)
  }
}
