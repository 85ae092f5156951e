import { EventOutOfOrder } from '../errors.js'
import { formatCents } from '../money.js'
import { type Page, type PageRequest, pageStart, toPage } from '../storage/page.js'
import type { PgTransactions } from '../storage/postgres/transaction.js'
import { postgresWork, type PgTx, type PostgresWork } from '../storage/work.js'
import { type AlertDetails, type EventType, type FiredAlert, type IncomingEvent, type Risk, type Thresholds, evaluate, windowLength } from './rules.js'
import { effectiveProfile, type AlertProfile, type AlertsStore, type StoredAlert, type StoredEvent } from './store.js'

const alertColumns = 'SELECT id, event_id, user_id, code, details, created_at FROM alerts '

export const pgAlertsSql = {
  // An event first takes its user's alert_states row, made on the user's first event: the upsert
  // locks the row whether it inserted it or found it, so one user's events are judged one at a
  // time on every instance, each seeing all the events committed before it.
  lockUser:
    'INSERT INTO alert_states (user_id) VALUES ($1) ' +
    'ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id RETURNING user_id',
  profile: 'SELECT risk, overrides FROM alert_profiles WHERE user_id = $1',
  // The reads of the rules, each through events_user_time or events_user_deposits, as on SQLite.
  latestEvents: 'SELECT time, type FROM events WHERE user_id = $1 ORDER BY time DESC, id DESC LIMIT $2',
  latestDeposits:
    "SELECT amount FROM events WHERE user_id = $1 AND type = 'deposit' ORDER BY time DESC, id DESC LIMIT $2",
  // sum() of BIGINTs is numeric, exact at any size: read as text, it becomes a BigInt.
  depositWindow:
    'SELECT coalesce(sum(amount), 0)::text AS total, count(*) AS count ' +
    "FROM events WHERE user_id = $1 AND type = 'deposit' AND time >= $2",
  velocityWindow: 'SELECT count(*) AS count FROM events WHERE user_id = $1 AND time >= $2',
  // The event and its alerts in one statement; the alerts get their ids in the order fired
  // (ascending codes), as on SQLite.
  insertEvent:
    'WITH event AS (INSERT INTO events (user_id, type, amount, time, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id) ' +
    'INSERT INTO alerts (event_id, user_id, code, details, created_at) ' +
    'SELECT event.id, $1, fired.code, fired.details, $5 FROM event, unnest($6::bigint[], $7::text[]) WITH ORDINALITY AS fired (code, details, n) ' +
    'ORDER BY fired.n',
  upsertProfile:
    'INSERT INTO alert_profiles (user_id, risk, overrides, updated_at) VALUES ($1, $2, $3, $4) ' +
    'ON CONFLICT (user_id) DO UPDATE SET risk = excluded.risk, overrides = excluded.overrides, updated_at = excluded.updated_at ' +
    'RETURNING risk, overrides',
  // As on SQLite: pages by id walking events_user_time (per user, (time, id) order is id order),
  // starting at the cursor event's own time. The codes come sorted, '{}' when none fired.
  eventsPage:
    'SELECT e.id, e.type, e.amount, e.time, e.created_at, ' +
    'ARRAY(SELECT code FROM alerts WHERE event_id = e.id ORDER BY code) AS alert_codes ' +
    'FROM events AS e WHERE e.user_id = $1 AND e.time <= coalesce((SELECT time FROM events WHERE id = $2 AND ' +
    'user_id = $1), 9223372036854775807) AND e.id < $2 ORDER BY e.time DESC, e.id DESC LIMIT $3',
  // One statement per filter, so each walks the index made for it rather than every alert.
  alertsPage: alertColumns + 'WHERE id < $1 ORDER BY id DESC LIMIT $2',
  alertsOfUser: alertColumns + 'WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
  alertsWithCode: alertColumns + 'WHERE code = $1 AND id < $2 ORDER BY id DESC LIMIT $3',
  alertsOfUserWithCode: alertColumns + 'WHERE user_id = $1 AND code = $2 AND id < $3 ORDER BY id DESC LIMIT $4'
} as const

type AlertRow = Omit<StoredAlert, 'details'> & { details: string }

/**
 * Events and alerts on PostgreSQL. Storing the event, evaluating the rules and storing the
 * alerts is one Work; the rules see only the slice of history they need, read through indexes.
 */
export class PgAlerts implements AlertsStore {
  readonly #reads: PgTransactions
  readonly #now: () => Date
  readonly #unit: 's' | 'ms'

  constructor (reads: PgTransactions, now: () => Date, unit: 's' | 'ms') {
    this.#reads = reads
    this.#now = now
    this.#unit = unit
  }

  async #profile (tx: PgTx, userId: number): Promise<AlertProfile> {
    const [row] = await tx.query<{ risk: Risk, overrides: string }>(pgAlertsSql.profile, [userId])
    return effectiveProfile(userId, row)
  }

  async profile (userId: number): Promise<AlertProfile> {
    return await this.#reads.run(async tx => await this.#profile(tx, userId), { readOnly: true })
  }

  setProfile (userId: number, risk: Risk, overrides: Partial<Thresholds>): PostgresWork<AlertProfile> {
    return postgresWork(async tx => {
      const [row] = await tx.query<{ risk: Risk, overrides: string }>(pgAlertsSql.upsertProfile,
        [userId, risk, JSON.stringify(overrides), this.#now().toISOString()])
      return effectiveProfile(userId, row)
    })
  }

  record (userId: number, event: IncomingEvent): PostgresWork<FiredAlert[]> {
    return postgresWork(async tx => await this.#record(tx, userId, event))
  }

  async #record (tx: PgTx, userId: number, event: IncomingEvent): Promise<FiredAlert[]> {
    await tx.query(pgAlertsSql.lockUser, [userId])
    const t = (await this.#profile(tx, userId)).thresholds
    // consecutive_withdrawals is at least 2, so this reads the newest event whenever there is one.
    const latest = await tx.query<{ time: number, type: EventType }>(pgAlertsSql.latestEvents, [userId, t.consecutive_withdrawals - 1])
    const last = latest[0]?.time
    if (last !== undefined && event.time < last) throw new EventOutOfOrder(event.time, last)
    const deposits = await tx.query<{ amount: number }>(pgAlertsSql.latestDeposits, [userId, t.increasing_deposits - 1])
    const [window] = await tx.query<{ total: string, count: number }>(pgAlertsSql.depositWindow,
      [userId, event.time - windowLength(t.deposit_window_seconds, this.#unit)]) as [{ total: string, count: number }]
    const [velocity] = await tx.query<{ count: number }>(pgAlertsSql.velocityWindow,
      [userId, event.time - windowLength(t.velocity_window_seconds, this.#unit)]) as [{ count: number }]
    const fired = evaluate(event, {
      previousTypes: latest.map(row => row.type),
      previousDeposits: deposits.map(row => row.amount),
      depositWindow: { total: BigInt(window.total), count: window.count },
      velocityWindowCount: velocity.count
    }, t, this.#unit)
    await tx.query(pgAlertsSql.insertEvent, [
      userId, event.type, event.amount, event.time, this.#now().toISOString(),
      fired.map(alert => alert.code), fired.map(alert => JSON.stringify(alert.details))
    ])
    return fired
  }

  async events (userId: number, page: PageRequest): Promise<Page<StoredEvent>> {
    const rows = await this.#reads.run(async tx => await tx.query<Omit<StoredEvent, 'amount'> & { amount: number }>(
      pgAlertsSql.eventsPage, [userId, pageStart(page), page.limit + 1]), { readOnly: true })
    return toPage(rows.map(row => ({ ...row, amount: formatCents(row.amount) })), page.limit)
  }

  async alerts (filter: { userId?: number | undefined, code?: number | undefined }, page: PageRequest): Promise<Page<StoredAlert>> {
    const { userId, code } = filter
    const before = pageStart(page)
    const limit = page.limit + 1
    const [text, values] = userId === undefined
      ? (code === undefined ? [pgAlertsSql.alertsPage, [before, limit]] : [pgAlertsSql.alertsWithCode, [code, before, limit]])
      : (code === undefined ? [pgAlertsSql.alertsOfUser, [userId, before, limit]] : [pgAlertsSql.alertsOfUserWithCode, [userId, code, before, limit]])
    const rows = await this.#reads.run(async tx => await tx.query<AlertRow>(text, values), { readOnly: true })
    return toPage(rows.map(row => ({ ...row, details: JSON.parse(row.details) as AlertDetails })), page.limit)
  }
}
