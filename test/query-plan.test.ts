import t from 'tap'
import { alertsSql } from '../src/alerts/repository.js'
import { creditsSql } from '../src/credits/repository.js'
import { idempotencySql } from '../src/idempotency/repository.js'
import { pointsSql } from '../src/points/repository.js'
import { usersSql } from '../src/users/repository.js'
import { build } from './helper.js'

// Cost must follow the rows a request touches, not the size of history: every read goes
// through an index, and the spend, negative-add and balance reads use the ones made for them.
const params = Object.fromEntries([
  ['ledgerId', 0], ['payer', 'P'], ['ts', '2022-01-01T00:00:00.000Z'], ['lotId', 1], ['ids', '[1]'], ['before', 10],
  ['limit', 10], ['userId', 1], ['id', 1], ['emailKey', 'a@example.com'], ['day', '2026-11-22'], ['from', 0], ['code', 30], ['key', 'k']
])

t.test('no query scans a table or sorts the history', async t => {
  const app = await build(t)
  const plans = Object.entries({ ...pointsSql, ...usersSql, ...creditsSql, ...alertsSql, ...idempotencySql })
    .filter(([, sql]) => sql.startsWith('SELECT'))
    .map(([name, sql]) => ({
      name,
      steps: (app.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as Array<{ detail: string }>).map(row => row.detail)
    }))
  t.ok(plans.length >= 10, 'every SELECT of the repository is checked')
  for (const { name, steps } of plans) {
    // The only scan allowed is of the page's own id list (json_each), never a ledger table.
    t.notOk(steps.some(step => /^SCAN (?!json_each|\(subquery)/.test(step)), `${name} scans nothing: ${steps.join(' | ')}`)
  }
  const plan = (name: string) => plans.find(p => p.name === name)!.steps.join(' | ')
  t.equal(plan('spendableLots'), 'SEARCH point_lots USING INDEX point_lots_spendable (ledger_id=?)',
    'a spend walks the partial index in FIFO order: no sort, no lot without points')
  t.equal(plan('payerSpendableLots'), 'SEARCH point_lots USING INDEX point_lots_payer_spendable (ledger_id=? AND payer=?)')
  t.equal(plan('adjustedNewerLots'), 'SEARCH point_lots USING INDEX point_lots_adjusted (ledger_id=? AND payer=? AND ts>?)')
  t.equal(plan('balances'), 'SEARCH payer_balances USING PRIMARY KEY (ledger_id=?)', 'balance reads maintained rows')
  t.equal(plan('ledgerTotal'), 'SEARCH ledger_totals USING INTEGER PRIMARY KEY (rowid=?)', 'a ledger\'s total is one maintained row, not a sum over its payers')
  t.equal(plan('balanceOf'), 'SEARCH payer_balances USING PRIMARY KEY (ledger_id=? AND payer=?)')
  t.equal(plan('history'), 'SEARCH credit_entries USING INDEX credit_entries_user (user_id=? AND id<?)', 'credit history pages by index')
  t.equal(plan('byEmailKey'), 'SEARCH users USING COVERING INDEX sqlite_autoindex_users_1 (email_key=?)')
  t.equal(plan('ranOn'), 'SEARCH daily_grant_runs USING COVERING INDEX daily_grant_runs_day (day=?)')
  // The alert rules read windows and the latest events of one user through indexes.
  t.equal(plan('depositWindow'), 'SEARCH events USING COVERING INDEX events_user_deposits (user_id=? AND time>?)')
  t.equal(plan('velocityWindow'), 'SEARCH events USING COVERING INDEX events_user_time (user_id=? AND time>?)')
  t.equal(plan('latestEvents'), 'SEARCH events USING COVERING INDEX events_user_time (user_id=?)')
  // The repository runs these two with the limit written in: the plan is the same.
  for (const name of ['latestEvents', 'latestDeposits'] as const) {
    const literal = app.db.prepare(`EXPLAIN QUERY PLAN ${alertsSql[name].replace('@limit', '2')}`).all(params) as Array<{ detail: string }>
    t.equal(literal.map(row => row.detail).join(' | '), plan(name), `${name} with a literal LIMIT`)
  }
  t.equal(plan('latestDeposits'), 'SEARCH events USING COVERING INDEX events_user_deposits (user_id=?)')
  t.equal(plan('alertsOfUser'), 'SEARCH alerts USING INDEX alerts_user (user_id=? AND id<?)')
  // Not alerts_code, which holds every user's alerts of the code: only this user's are walked.
  t.equal(plan('alertsOfUserWithCode'), 'SEARCH alerts USING INDEX alerts_user (user_id=? AND id<?)')
  t.equal(plan('alertsWithCode'), 'SEARCH alerts USING INDEX alerts_code (code=? AND id<?)')
  t.equal(plan('find'), 'SEARCH idempotency_keys USING INDEX sqlite_autoindex_idempotency_keys_1 (key=?)', 'a key is found by its primary key')
  t.match(plan('eventsPage'), /^SEARCH e USING INDEX events_user_time \(user_id=\? AND time<\?\)/, 'events page by index')
  t.notMatch(plan('eventsPage'), /TEMP B-TREE/, 'in the order it answers: no sort')
})
