import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { alertsSql } from '../../src/alerts/sqlite.js'
import { creditsSql } from '../../src/credits/sqlite.js'
import { checks } from '../../src/storage/sqlite/check.js'
import { idempotencySql } from '../../src/idempotency/sqlite.js'
import { pointsSql } from '../../src/points/sqlite.js'
import { usersSql } from '../../src/users/sqlite.js'
import { build } from '../helper.js'

// Cost must follow the rows a request touches, not the size of history: every statement goes
// through an index, and the spend, negative-add and balance reads use the ones made for them.

// Every statement in src/ that names a table, by name. The repositories' and db:check's are
// imported; the others are quoted here, and the source scan below fails on any it does not know.
const prefixed = (domain: string, sql: Record<string, string>) =>
  Object.entries(sql).map(([name, text]) => [`${domain}.${name}`, text] as const)
const resetTables = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schemaversion'"
const statements = new Map<string, string>([
  ...prefixed('points', pointsSql),
  ...prefixed('users', usersSql),
  ...prefixed('credits', creditsSql),
  ...prefixed('alerts', alertsSql),
  ...prefixed('idempotency', idempotencySql),
  ...checks.map(c => [`check: ${c.name}`, c.sql] as const),
  ['health.roundTrip', 'SELECT 1'],
  ['reset.tables', resetTables]
])
// SQL in src/ that is not run as written, so it has no plan to check.
const unplanned = new Map([
  // The text of src/db/reset.ts's template literal, not a template here.
  // eslint-disable-next-line no-template-curly-in-string
  ['DELETE FROM "${table}"', '/flushDB (a development route) empties every table: whole tables by design']
])

// A step that costs more than the rows asked for: a scan (of anything but a constant row), an
// index built for the query, a sort.
const costly = (step: string) => /^SCAN (?!CONSTANT ROW$)|AUTOMATIC|TEMP B-TREE/.test(step)
// The deliberate ones, each with its reason. Any other costly step fails, and so does an entry
// here that no longer matches anything.
const deliberate = new Map<string, { steps: RegExp, reason: string }>([
  ['credits.grantAll', { steps: /^SCAN users$/, reason: 'the daily grant credits every user, once a day' }],
  ['points.adjustmentDrawsOf', {
    steps: /^(SCAN json_each VIRTUAL TABLE INDEX 1:|USE TEMP B-TREE FOR ORDER BY)$/,
    reason: 'walks the page\'s own id list and sorts only the draws of that page'
  }],
  // A statement that writes many rows gets SQLite's checks for foreign keys it broke itself: each
  // runs only if the statement's own count of broken keys is not zero (FkIfZero), and then the
  // statement fails anyway. Inserting fresh ids and their lots breaks none.
  ...(['points.insertTransactions', 'points.insertLots'] as const).map(name => [name, {
    steps: /^SCAN (100-ROW VALUES CLAUSE|point_adjustment_draws|point_spend_draws|point_expirations|point_hold_draws|point_reversal_draws)$/,
    reason: 'a bulk import\'s rows as given; foreign-key checks that run only after a broken key'
  }] as const),
  ...(['points.spendDrawsOf', 'points.holdDrawsOf', 'points.reversalDrawsOf'] as const).map(name => [name, {
    steps: /^SCAN json_each VIRTUAL TABLE INDEX 1:$/,
    reason: 'walks the page\'s own id list'
  }] as const),
  ...(['points.dueLotLedgers', 'points.dueHoldLedgers'] as const).map(name => [name, {
    steps: /^USE TEMP B-TREE FOR DISTINCT$/,
    reason: 'the sweep: its ledgers, once each, of the rows that came due only (read through the index on expiry)'
  }] as const),
  ['alerts.eventsPage', { steps: /^SCAN \(subquery-1\)$/, reason: 'one event\'s alert codes, read by index, then ordered' }],
  ['reset.tables', { steps: /^SCAN sqlite_schema$/, reason: '/flushDB lists the tables to empty from the schema' }],
  ...checks.map(c => [`check: ${c.name}`, {
    steps: /./,
    reason: 'db:check reads whole tables by design: an operator\'s command, never the request path'
  }] as const)
])

// Each statement's own parameters, with values of the right kind.
const values: Record<string, unknown> = { ts: '2022-01-01T00:00:00.000Z', ids: '[1]', payer: 'P', day: '2026-11-22', key: 'k' }
const paramsOf = (sql: string) => sql.includes('?')
  ? Array.from(sql.matchAll(/\?/g), () => 1) // bound by position
  : Object.fromEntries([...sql.matchAll(/@(\w+)/g)].map(([, name]) => [name!, values[name!] ?? 1]))

t.test('every statement in src/ is known to this test', async t => {
  const src = new URL('../../src/', import.meta.url).pathname
  // PostgreSQL's statements have no SQLite plan to check (test/postgres/*-plan.test.ts checks
  // theirs); db:copy reads whole tables by design, an operator's command like db:check.
  const sqliteOnly = (f: string) => !f.startsWith('storage/postgres/') && !f.endsWith('/postgres.ts') && f !== 'storage/copy.ts'
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.ts') && sqliteOnly(f))
  const literal = /(['"`])((?:SELECT|INSERT|UPDATE|DELETE|WITH|REPLACE)\s(?:(?!\1)[^\\]|\\.)*)\1/g
  const all = [...statements.values()]
  const unknown = files.flatMap(file => [...readFileSync(join(src, file), 'utf8').matchAll(literal)]
    .map(m => m[2]!)
    .filter(text => !unplanned.has(text) && !all.some(sql => sql.includes(text)))
    .map(text => `${file}: ${text}`))
  t.strictSame(unknown, [], 'add each to `statements` (or `unplanned`) above, so its plan is checked')
})

t.test('no statement scans a table or sorts the history, except the deliberate ones', async t => {
  const app = await build(t)
  const plans = [...statements].map(([name, sql]) => ({
    name,
    steps: (app.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(paramsOf(sql)) as Array<{ detail: string }>).map(row => row.detail)
  }))
  t.equal(plans.length, statements.size)
  for (const { name, steps } of plans) {
    const allowed = deliberate.get(name)
    const costlySteps = steps.filter(costly)
    if (allowed === undefined) {
      t.strictSame(costlySteps, [], `${name} scans and sorts nothing: ${steps.join(' | ')}`)
    } else {
      t.ok(costlySteps.length > 0, `${name} is listed as deliberate (${allowed.reason}), so it still costs something`)
      t.strictSame(costlySteps.filter(step => !allowed.steps.test(step)), [], `${name}: only ${allowed.reason}`)
    }
  }
  t.strictSame([...deliberate.keys()].filter(name => !statements.has(name)), [], 'every deliberate one is a statement')

  const plan = (name: string) => plans.find(p => p.name === name)!.steps.join(' | ')
  t.equal(plan('points.spendableLots'), 'SEARCH point_lots USING INDEX point_lots_spendable (ledger_id=?)',
    'a spend walks the partial index in FIFO order: no sort, no lot without points')
  t.equal(plan('points.payerSpendableLots'), 'SEARCH point_lots USING INDEX point_lots_payer_spendable (ledger_id=? AND payer=?)')
  t.equal(plan('points.adjustedNewerLots'), 'SEARCH point_lots USING INDEX point_lots_adjusted (ledger_id=? AND payer=? AND ts>?)')
  t.equal(plan('points.payerHasAdjustedLots'), 'SEARCH point_lots USING INDEX point_lots_adjusted (ledger_id=? AND payer=?)', 'a bulk import asks once per payer')
  // The life of a point: cost follows the work.
  t.equal(plan('points.spendableLotsByExpiry'), 'SEARCH point_lots USING INDEX point_lots_spendable_expiry (ledger_id=?)',
    'POINTS_DRAW_ORDER=expiry walks its own partial index in draw order: no sort')
  t.equal(plan('points.dueLots'), 'SEARCH point_lots USING INDEX point_lots_due (ledger_id=? AND expires_at>? AND expires_at<?)',
    'a write reads only the lots that came due since the ledger was last settled')
  t.equal(plan('points.dueHolds'), 'SEARCH point_holds USING COVERING INDEX point_holds_due (ledger_id=? AND expires_at>? AND expires_at<?)')
  t.match(plan('points.isDue'), /point_lots USING INDEX point_lots_due \(ledger_id=\? AND expires_at>\? AND expires_at<\?\) .* point_holds USING COVERING INDEX point_holds_due/,
    'a read asks the same indexes')
  t.equal(plan('points.dueLotLedgers'), 'SEARCH point_lots USING INDEX point_lots_sweep (expires_at>? AND expires_at<?) | USE TEMP B-TREE FOR DISTINCT',
    'the sweep walks the index on expiry, the due rows only')
  t.equal(plan('points.dueHoldLedgers'), 'SEARCH point_holds USING COVERING INDEX point_holds_sweep (expires_at>? AND expires_at<?) | USE TEMP B-TREE FOR DISTINCT')
  t.equal(plan('points.balancesAt'),
    'SEARCH b USING PRIMARY KEY (ledger_id=?) | CORRELATED SCALAR SUBQUERY 1 | SEARCH h USING PRIMARY KEY (ledger_id=? AND payer=? AND at<?)',
    '?at= is one seek of the history\'s key per payer, whatever the length of the history')
  t.equal(plan('points.expiring'), 'SEARCH point_lots USING INDEX point_lots_payer_expiring (ledger_id=? AND payer=? AND expires_at>?)')
  t.equal(plan('points.balances'), 'SEARCH payer_balances USING PRIMARY KEY (ledger_id=?)', 'balance reads maintained rows')
  t.equal(plan('points.ledgerTotal'), 'SEARCH ledger_totals USING INTEGER PRIMARY KEY (rowid=?)', 'a ledger\'s total is one maintained row, not a sum over its payers')
  t.equal(plan('points.balanceOf'), 'SEARCH payer_balances USING PRIMARY KEY (ledger_id=? AND payer=?)')
  t.equal(plan('credits.history'), 'SEARCH credit_entries USING INDEX credit_entries_user (user_id=? AND id<?)', 'credit history pages by index')
  t.equal(plan('users.byEmailKey'), 'SEARCH users USING COVERING INDEX sqlite_autoindex_users_1 (email_key=?)')
  t.equal(plan('credits.ranOn'), 'SEARCH daily_grant_runs USING COVERING INDEX daily_grant_runs_day (day=?)')
  // The alert rules read windows and the latest events of one user through indexes.
  t.equal(plan('alerts.depositWindow'), 'SEARCH events USING COVERING INDEX events_user_deposits (user_id=? AND time>?)')
  t.equal(plan('alerts.velocityWindow'), 'SEARCH events USING COVERING INDEX events_user_time (user_id=? AND time>?)')
  t.equal(plan('alerts.latestEvents'), 'SEARCH events USING COVERING INDEX events_user_time (user_id=?)')
  // The repository runs these two with the limit written in: the plan is the same.
  for (const name of ['latestEvents', 'latestDeposits'] as const) {
    const sql = alertsSql[name].replace('@limit', '2')
    const literal = app.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(paramsOf(sql)) as Array<{ detail: string }>
    t.equal(literal.map(row => row.detail).join(' | '), plan(`alerts.${name}`), `${name} with a literal LIMIT`)
  }
  t.equal(plan('alerts.latestDeposits'), 'SEARCH events USING COVERING INDEX events_user_deposits (user_id=?)')
  t.equal(plan('alerts.alertsOfUser'), 'SEARCH alerts USING INDEX alerts_user (user_id=? AND id<?)')
  // Not alerts_code, which holds every user's alerts of the code: only this user's are walked.
  t.equal(plan('alerts.alertsOfUserWithCode'), 'SEARCH alerts USING INDEX alerts_user (user_id=? AND id<?)')
  t.equal(plan('alerts.alertsWithCode'), 'SEARCH alerts USING INDEX alerts_code (code=? AND id<?)')
  t.equal(plan('idempotency.find'), 'SEARCH idempotency_keys USING INDEX sqlite_autoindex_idempotency_keys_1 (key=?)', 'a key is found by its primary key')
  t.match(plan('idempotency.purge'), /USING COVERING INDEX idempotency_keys_created \(created_at<\?\)/, 'the purge walks the expired keys only')
  t.match(plan('alerts.eventsPage'), /^SEARCH e USING INDEX events_user_time \(user_id=\? AND time<\?\)/, 'events page by index')
})
